/* sched.c - not written yet */
typedef int sched_placeholder_t;

/* timeparse.c - not written yet */
typedef int timeparse_placeholder_t;

/* store.c - not written yet */
typedef int store_placeholder_t;

/* acme.c - not written yet */
typedef int acme_placeholder_t;

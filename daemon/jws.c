/* jws.c - not written yet */
typedef int jws_placeholder_t;

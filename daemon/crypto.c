/* crypto.c - not written yet */
typedef int crypto_placeholder_t;

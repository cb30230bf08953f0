/* crypto.c - not written yet */

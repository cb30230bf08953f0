/* jws.c - not written yet */

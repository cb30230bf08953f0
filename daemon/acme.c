/* acme.c - not written yet */

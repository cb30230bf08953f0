/* service.c - not written yet */

/* timeparse.c - not written yet */

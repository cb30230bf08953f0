/* order.c - not written yet */

/* order.c - not written yet */
typedef int order_placeholder_t;

/* config.c - not written yet */
typedef int config_placeholder_t;

/*
 * Stand-in for libgupnp-igd-1.0.so.4, for running Debian 12's
 * simple-whip-client in the tests.
 *
 * That whip-client is linked with libsoup 2, while GStreamer's libnice pulls
 * in libsoup 3 through UPnP IGD (libgupnp-igd -> libgupnp -> libsoup-3), and
 * libsoup aborts a process that loads both. libnice uses IGD only to ask a
 * home router for port mappings, and does without when it cannot get one
 * (gupnp_simple_igd_thread_new returning NULL), so with this library first on
 * LD_LIBRARY_PATH the real whip-client and the real GStreamer WebRTC stack
 * run, only without UPnP, which a loopback test has no use for.
 */
#include <stddef.h>

void *gupnp_simple_igd_thread_new(void) { return NULL; }

unsigned long gupnp_simple_igd_get_type(void) { return 0; }

void gupnp_simple_igd_add_port(void *igd, const char *protocol, unsigned int external_port,
                               const char *local_ip, unsigned int local_port,
                               unsigned int lease_duration, const char *description) {
  (void)igd; (void)protocol; (void)external_port; (void)local_ip; (void)local_port;
  (void)lease_duration; (void)description;
}

void gupnp_simple_igd_remove_port_local(void *igd, const char *protocol,
                                        const char *local_ip, unsigned int local_port) {
  (void)igd; (void)protocol; (void)local_ip; (void)local_port;
}

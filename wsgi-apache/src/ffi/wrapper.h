/* The Apache httpd 2.4 and APR headers wsgi-apache binds to.
 * Regenerate src/ffi/bindings.rs with `cargo xtask bindings`. */
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <http_main.h>
#include <ap_mpm.h>
#include <ap_provider.h>
#include <ap_mmn.h>
#include <mod_auth.h>
#include <util_script.h>
#include <util_filter.h>
#include <apr_buckets.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <apr_pools.h>
#include <unixd.h>

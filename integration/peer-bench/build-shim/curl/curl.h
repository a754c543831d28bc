/* Empty stand-in for <curl/curl.h>, found through CPATH (see ../../.cargo/config.toml).
 *
 * librdkafka 2.11+ (bundled by rdkafka-sys 4.10) includes <curl/curl.h> under
 * `#ifdef WITH_OAUTHBEARER_OIDC` in src/rdkafka_conf.c, but its CMake build always defines
 * that macro (to 0 when curl is off): https://github.com/confluentinc/librdkafka/issues/5135
 * We build without curl (no OAUTHBEARER OIDC, not needed for benchmarks), so no curl symbol
 * is used; this header only lets the include succeed without libcurl's dev package. */

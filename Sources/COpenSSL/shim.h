#ifndef STARLING_COPENSSL_SHIM_H
#define STARLING_COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/bio.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

/* Function-like macros are invisible to Swift: each gets a static inline wrapper here. */
static inline long starling_openssl_ctx_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
static inline long starling_openssl_mode_partial_write(void) {
    return SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
}
static inline int starling_openssl_ctx_set_min_proto(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}
static inline long starling_openssl_set_host_name(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}
static inline long starling_openssl_bio_pending(BIO *bio) { return (long)BIO_ctrl_pending(bio); }

/* Context options: SSL_OP_* are built with SSL_OP_BIT(n) casts that Swift does not import. */
static inline uint64_t starling_openssl_ctx_set_options(SSL_CTX *ctx, uint64_t options) {
    return SSL_CTX_set_options(ctx, options);
}
static inline uint64_t starling_openssl_op_no_renegotiation(void) { return SSL_OP_NO_RENEGOTIATION; }
static inline uint64_t starling_openssl_op_no_compression(void) { return SSL_OP_NO_COMPRESSION; }
static inline int starling_openssl_ctx_set_max_proto(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_max_proto_version(ctx, version);
}
static inline uint64_t starling_openssl_op_cipher_server_preference(void) {
    return SSL_OP_CIPHER_SERVER_PREFERENCE;
}
/* The TLS 1.2 suites a context would negotiate that HTTP/2 forbids (RFC 9113 §9.2.2 and its appendix A):
   anything but an ephemeral key exchange (ECDHE, DHE) with an AEAD cipher. Returns how many, and the first's
   name in *first (a static string of OpenSSL's, not to be freed). TLS 1.3 suites are all allowed. */
static inline int starling_openssl_ctx_forbidden_h2_ciphers(SSL_CTX *ctx, const char **first) {
    STACK_OF(SSL_CIPHER) *list = SSL_CTX_get_ciphers(ctx);
    int forbidden = 0;
    *first = NULL;
    for (int i = 0; i < sk_SSL_CIPHER_num(list); i++) {
        const SSL_CIPHER *cipher = sk_SSL_CIPHER_value(list, i);
        int kx = SSL_CIPHER_get_kx_nid(cipher);
        if (kx == NID_kx_any) continue; /* a TLS 1.3 suite: its key exchange is always ephemeral */
        if ((kx == NID_kx_ecdhe || kx == NID_kx_dhe) && SSL_CIPHER_is_aead(cipher)) continue;
        if (forbidden == 0) *first = SSL_CIPHER_get_name(cipher);
        forbidden++;
    }
    return forbidden;
}
/* Server-side session cache (mode and size are macros over SSL_CTX_ctrl). */
static inline long starling_openssl_ctx_set_session_cache_server(SSL_CTX *ctx, long size) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    return SSL_CTX_sess_set_cache_size(ctx, size);
}
/* Error queue: the library and reason parts of a packed error code. */
static inline int starling_openssl_err_reason(unsigned long code) { return ERR_GET_REASON(code); }
static inline int starling_openssl_err_lib(unsigned long code) { return ERR_GET_LIB(code); }
/* X509 names in RFC 2253 form ("CN=x,O=y"), for log lines. */
static inline unsigned long starling_openssl_xn_flag_rfc2253(void) { return XN_FLAG_RFC2253; }
/* Keeps OpenSSL from freeing its global state in an atexit handler: a thread still finishing a TLS write
   while the process exits would otherwise crash inside libcrypto. */
static inline int starling_openssl_init_no_atexit(void) {
    return OPENSSL_init_ssl(OPENSSL_INIT_NO_ATEXIT | OPENSSL_INIT_LOAD_SSL_STRINGS, NULL);
}
#endif

// First on the include path of the MANY_LEVEL_NO_OPENSSL builds: with
// MANY_LEVEL_NO_OPENSSL defined, nothing may include OpenSSL's headers.
#error "openssl/opensslv.h was included although MANY_LEVEL_NO_OPENSSL is defined"

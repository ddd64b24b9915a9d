// Certificates for the TLS tests, made at test time with OpenSSL's API into a
// temporary directory (P-256 keys: quick to make): a CA, host certificates
// that are good (localhost, 127.0.0.1, ::1), expired, for another host, from
// another CA, or naming the host in their common name only, and client certificates from both CAs. Plus contexts made
// from them, and a pair of TLS sessions around recording sessions.
#pragma once

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

#include "many_level/transport/tls.hpp"
#include "test_support.hpp"

namespace transport_test {

class TestCertificates {
 public:
  TestCertificates() {
    Issued ca = make("many-level test CA", nullptr, true, "", 0, 365);
    Issued other_ca = make("some other CA", nullptr, true, "", 0, 365);
    const char* here = "DNS:localhost,IP:127.0.0.1,IP:::1";
    save(ca, "ca");
    save(other_ca, "other-ca");
    save(make("localhost", &ca, false, here, 0, 30, "serverAuth"), "server");
    save(make("localhost", &ca, false, here, -30, -1, "serverAuth"), "expired");
    save(make("wrong.example", &ca, false, "DNS:wrong.example,IP:10.9.9.9", 0, 30, "serverAuth"), "wrong-host");
    save(make("localhost", &other_ca, false, here, 0, 30, "serverAuth"), "rogue-server");
    save(make("localhost", &ca, false, "", 0, 30, "serverAuth"), "common-name-only");
    save(make("alice", &ca, false, "", 0, 30, "clientAuth"), "client");
    save(make("mallory", &other_ca, false, "", 0, 30, "clientAuth"), "rogue-client");
  }

  // "<dir>/<name>.pem" and "<dir>/<name>.key".
  std::string cert(const std::string& name) const { return dir_.file(name + ".pem"); }
  std::string key(const std::string& name) const { return dir_.file(name + ".key"); }

  many_level::TlsContext server(const std::string& name = "server", bool require_client_cert = false,
                                std::chrono::milliseconds handshake_timeout = std::chrono::seconds(10)) const {
    many_level::TlsServerOptions options;
    options.certificate_chain_file = cert(name);
    options.private_key_file = key(name);
    if (require_client_cert) options.client_ca_file = cert("ca");
    options.handshake_timeout = handshake_timeout;
    return many_level::TlsContext::server(options);
  }

  many_level::TlsContext client(const std::string& trusted_ca = "ca", const std::string& client_cert = "",
                                std::chrono::milliseconds handshake_timeout = std::chrono::seconds(10)) const {
    many_level::TlsClientOptions options;
    options.ca_file = cert(trusted_ca);
    if (!client_cert.empty()) {
      options.certificate_file = cert(client_cert);
      options.private_key_file = key(client_cert);
    }
    options.handshake_timeout = handshake_timeout;
    return many_level::TlsContext::client(options);
  }

 private:
  struct KeyFree {
    void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
  };
  struct X509Free {
    void operator()(X509* cert) const { X509_free(cert); }
  };
  struct Issued {
    std::unique_ptr<EVP_PKEY, KeyFree> key;
    std::unique_ptr<X509, X509Free> cert;
  };

  static void check(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("making test certificates: ") + what);
  }

  static std::unique_ptr<EVP_PKEY, KeyFree> new_key() {
    std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> context(EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nullptr),
                                                                        &EVP_PKEY_CTX_free);
    check(context && EVP_PKEY_keygen_init(context.get()) == 1, "keygen init");
    check(EVP_PKEY_CTX_set_ec_paramgen_curve_nid(context.get(), NID_X9_62_prime256v1) == 1, "curve");
    EVP_PKEY* key = nullptr;
    check(EVP_PKEY_keygen(context.get(), &key) == 1, "keygen");
    return std::unique_ptr<EVP_PKEY, KeyFree>(key);
  }

  static void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX context;
    X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str());
    check(extension != nullptr, "extension");
    check(X509_add_ext(cert, extension, -1) == 1, "add extension");
    X509_EXTENSION_free(extension);
  }

  // Valid from `from_days` to `to_days` (relative to now; negative is past).
  Issued make(const std::string& common_name, const Issued* issuer, bool is_ca, const std::string& alt_names,
              long from_days, long to_days, const std::string& usage = "") {
    Issued made;
    made.key = new_key();
    made.cert.reset(X509_new());
    X509* cert = made.cert.get();
    check(cert != nullptr, "X509_new");
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), ++serial_);
    X509_gmtime_adj(X509_getm_notBefore(cert), from_days * 86400 - (from_days == 0 ? 3600 : 0));
    X509_gmtime_adj(X509_getm_notAfter(cert), to_days * 86400);
    X509_set_pubkey(cert, made.key.get());
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("many-level tests"),
                               -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);
    X509* signer = issuer ? issuer->cert.get() : cert;
    X509_set_issuer_name(cert, X509_get_subject_name(signer));
    add_extension(cert, signer, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_extension(cert, signer, NID_key_usage,
                  is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,keyAgreement");
    add_extension(cert, signer, NID_subject_key_identifier, "hash");
    if (issuer) add_extension(cert, signer, NID_authority_key_identifier, "keyid");
    if (!alt_names.empty()) add_extension(cert, signer, NID_subject_alt_name, alt_names);
    if (!usage.empty()) add_extension(cert, signer, NID_ext_key_usage, usage);
    EVP_PKEY* signing_key = issuer ? issuer->key.get() : made.key.get();
    check(X509_sign(cert, signing_key, EVP_sha256()) > 0, "sign");
    return made;
  }

  void save(const Issued& issued, const std::string& name) {
    std::unique_ptr<FILE, decltype(&std::fclose)> cert_file(std::fopen(cert(name).c_str(), "w"), &std::fclose);
    std::unique_ptr<FILE, decltype(&std::fclose)> key_file(std::fopen(key(name).c_str(), "w"), &std::fclose);
    check(cert_file && key_file, "open files");
    check(PEM_write_X509(cert_file.get(), issued.cert.get()) == 1, "write certificate");
    check(PEM_write_PrivateKey(key_file.get(), issued.key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1,
          "write key");
  }

  TempDir dir_;
  long serial_ = 0;
};

// Made once per test program: every test reads the same files.
inline const TestCertificates& certificates() {
  static const TestCertificates made;
  return made;
}

}  // namespace transport_test

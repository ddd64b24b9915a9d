// TLS as a Session decorator: a TlsSession wraps the session that speaks
// many-level (a host's session, or a guest's stream) and is itself a Session
// that takes and gives ciphertext. Every transport (event loop, fd pumps,
// iostreams, the memory pair) then carries TLS unchanged. OpenSSL works on
// memory BIOs: no socket, no thread of its own.
//
// Incoming: receive() feeds ciphertext to OpenSSL and hands the plaintext to
// the inner session in one receive(). Outgoing: the inner session's output
// is encrypted as it appears, on the thread that wrote it (the inner
// output's listener and direct sender are ours), into this session's own
// output, so a SendMode::now write still goes out on the writer's thread when
// the transport allows: encryption adds no thread hop. What the inner session
// writes from inside its receive() is encrypted once that returns, in one go
// (a pipelining guest's next requests, a host's inline replies).
//
// Before the handshake is done, the inner session's output waits where it is.
// A handshake that fails fails this session with OpenSSL's reason and the
// certificate check's ("TLS handshake failed: certificate verify failed:
// certificate has expired"); its alert still goes to the peer. One that is not
// done within the context's handshake_timeout fails it too.
#pragma once

#include <arpa/inet.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "../error.hpp"
#include "../version.hpp"
#include "session.hpp"
#include "tls_context.hpp"
#include "tls_deadlines.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

// Threads, as session.hpp asks: receive(), end(), failed() and wants_input()
// come from the transport's thread; the inner session may write its output
// from any thread. One lock guards the OpenSSL state; a writer never waits
// for it (it may hold the inner session's locks): when another thread has
// it, that thread encrypts the writer's bytes too before it lets go.
class TlsSession final : public Session {
 public:
  // `context` says which side this is. A client checks the host's certificate
  // against `server_name` (the context's own server name, if it has one, wins),
  // a DNS name or an IP address; empty with verification on is an error.
  // Throws Error(LEVEL_INVALID_ARGUMENT).
  TlsSession(const TlsContext& context, std::shared_ptr<Session> inner, std::string server_name = {})
      : core_(std::make_shared<Core>()) {
    if (!inner) throw Error(codes::invalid_argument, "TlsSession needs a session to wrap");
    Core& core = *core_;
    core.context = context.state_;
    core.inner = std::move(inner);
    core.output_high_water = core.inner->output().high_water();
    core.output = std::make_unique<OutputBuffer>(core.output_high_water);

    ERR_clear_error();
    core.ssl.reset(SSL_new(context.native_handle()));
    BIO* in = BIO_new(BIO_s_mem());
    BIO* out = BIO_new(BIO_s_mem());
    if (!core.ssl || !in || !out) {
      BIO_free(in);
      BIO_free(out);
      throw Error(codes::io_error, "cannot make a TLS session: " + detail::take_openssl_errors());
    }
    SSL_set_bio(core.ssl.get(), in, out);  // the SSL owns them from here
    core.in = in;
    core.out = out;
    if (context.is_server()) {
      SSL_set_accept_state(core.ssl.get());
    } else {
      if (!context.server_name().empty()) server_name = context.server_name();
      expect_peer_name(context, server_name);
      SSL_set_connect_state(core.ssl.get());
    }

    // The inner session's output is ours to empty from now on.
    std::weak_ptr<Core> weak = core_;
    OutputBuffer& inner_output = core.inner->output();
    inner_output.on_readable([weak] {
      auto core = weak.lock();
      if (!core || core->deferring()) return;
      // No bytes encrypted here: a wake, which the transport must see (the
      // inner session may want to be closed, or to read again).
      if (!core->encrypt(SendMode::queued)) core->output->wake();
    });
    inner_output.on_direct_send([weak] {
      auto core = weak.lock();
      if (!core) return false;
      if (!core->deferring()) core->encrypt(SendMode::now);
      // Encrypted and handed to our output, whose own direct sender or
      // listener saw to it; or waiting for the handshake: either way nothing
      // is left for the inner output's listener to do.
      return true;
    });

    if (!context.is_server()) {
      std::lock_guard<std::mutex> lock(core.mutex);
      core.step_handshake();  // the ClientHello
    }
    const auto timeout = context.handshake_timeout();
    core.deadline = core.context->deadlines.at(detail::TlsDeadlines::Clock::now() + timeout, [weak, timeout] {
      if (auto core = weak.lock()) core->time_out(timeout);
    });
  }

  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  ~TlsSession() override {
    core_->detach();
    core_->context->deadlines.cancel(core_->deadline);
  }

  void receive(const char* data, size_t size) override { core_->receive(data, size); }

  void end() override {
    Core& core = *core_;
    core.detach();
    core.context->deadlines.cancel(core.deadline);
    {
      std::lock_guard<std::mutex> lock(core.mutex);
      if (core.ended) return;
      core.ended = true;
    }
    core.output->close();
    core.inner->end();
  }

  OutputBuffer& output() override { return *core_->output; }

  // Ours first (a TLS failure), then the inner session's. When the inner
  // session asks to be closed, a close_notify goes out before the stream
  // closes, so the peer can tell a deliberate close from a cut.
  std::string failed() const override {
    Core& core = *core_;
    if (core.has_failed.load()) {
      std::lock_guard<std::mutex> lock(core.mutex);
      return core.failure;
    }
    std::string inner_failure = core.inner->failed();
    if (!inner_failure.empty()) core.say_goodbye();
    return inner_failure;
  }

  // Handshake records are read whatever the inner session wants; after that,
  // input pauses while it wants none or while our ciphertext is at its
  // high-water mark (a peer that does not read).
  bool wants_input() override {
    Core& core = *core_;
    if (core.has_failed.load() || core.output->room() == 0) return false;
    return !core.handshake_done.load() || core.inner->wants_input();
  }

  bool handshake_done() const { return core_->handshake_done.load(); }
  bool established() const override { return handshake_done(); }

  // "TLSv1.3"; empty before the handshake is done.
  std::string protocol() const {
    std::lock_guard<std::mutex> lock(core_->mutex);
    return core_->handshake_done ? SSL_get_version(core_->ssl.get()) : "";
  }

  // "TLS_AES_256_GCM_SHA384"; empty before the handshake is done.
  std::string cipher() const {
    std::lock_guard<std::mutex> lock(core_->mutex);
    if (!core_->handshake_done) return {};
    const char* name = SSL_get_cipher_name(core_->ssl.get());
    return name ? name : "";
  }

  // The subject of the peer's verified certificate ("CN=alice,O=example"),
  // empty when it presented none (or verification is off).
  std::string peer_subject() const {
    std::lock_guard<std::mutex> lock(core_->mutex);
    if (!core_->handshake_done || SSL_get_verify_result(core_->ssl.get()) != X509_V_OK) return {};
#if OPENSSL_VERSION_MAJOR >= 3
    X509* peer = SSL_get1_peer_certificate(core_->ssl.get());
#else
    X509* peer = SSL_get_peer_certificate(core_->ssl.get());
#endif
    if (!peer) return {};
    std::string subject;
    if (BIO* text = BIO_new(BIO_s_mem())) {
      X509_NAME_print_ex(text, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253);
      char* data = nullptr;
      long size = BIO_get_mem_data(text, &data);
      if (size > 0) subject.assign(data, static_cast<size_t>(size));
      BIO_free(text);
    }
    X509_free(peer);
    return subject;
  }

  Session& inner() const { return *core_->inner; }

 private:
  // What the inner output's listeners reach: they hold it weakly, so one
  // that fires after this session is gone finds nothing to touch.
  struct Core {
    std::shared_ptr<detail::TlsContextState> context;
    std::shared_ptr<Session> inner;
    size_t output_high_water = 0;
    std::unique_ptr<OutputBuffer> output;  // ciphertext
    detail::TlsDeadlines::Key deadline;

    // Guards the SSL and everything up to the atomics.
    mutable std::mutex mutex;
    detail::SslPtr ssl;
    BIO* in = nullptr;   // ciphertext received, for OpenSSL to read
    BIO* out = nullptr;  // ciphertext OpenSSL wrote, for output
    bool ended = false;
    bool goodbye_said = false;
    std::string failure;
    std::string plaintext;  // scratch for what the inner output holds
    static constexpr size_t scratch_limit = size_t{1} << 20;

    std::atomic<bool> handshake_done{false};
    std::atomic<bool> has_failed{false};
    // Someone asked for the inner output to be encrypted (and whether with
    // SendMode::now) while another thread held the lock.
    std::atomic<bool> encrypt_requested{false};
    std::atomic<bool> now_requested{false};
    // The thread inside receive()'s call of the inner session: its writes
    // are encrypted when that call returns.
    std::atomic<std::thread::id> receiving{};

    bool deferring() const { return receiving.load() == std::this_thread::get_id(); }

    void detach() {
      OutputBuffer& inner_output = inner->output();
      inner_output.on_readable(nullptr);
      inner_output.on_direct_send(nullptr);
    }

    // Transport thread.
    void receive(const char* data, size_t size) {
      // The plaintext of one call goes in a buffer that stays with the
      // thread (an event loop serves every connection from one) and keeps its
      // size, so it is neither allocated nor cleared per call; taken out
      // while in use, so a nested call would simply find none.
      thread_local std::string scratch;
      std::string plain;
      plain.swap(scratch);
      size_t used = 0;
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (ended || has_failed.load()) return;
        if (BIO_write(in, data, static_cast<int>(std::min<size_t>(size, INT_MAX))) <= 0 && size > 0) {
          fail_locked("TLS: cannot buffer input: " + detail::take_openssl_errors());
          return;
        }
        if (!handshake_done.load()) step_handshake();
        if (handshake_done.load() && !has_failed.load()) used = read_locked(plain);
        send_locked(SendMode::now);
        shrink_input_locked();
      }
      encrypt_if_requested();
      if (used > 0) {
        receiving.store(std::this_thread::get_id());
        struct Reset {
          std::atomic<std::thread::id>& receiving;
          ~Reset() { receiving.store(std::thread::id()); }
        } reset{receiving};
        inner->receive(plain.data(), used);
      }
      // What the inner session wrote meanwhile, in one record or few.
      encrypt(SendMode::now);
      if (plain.size() <= scratch_limit) scratch.swap(plain);  // a huge one is let go
    }

    // Any thread. Encrypts what the inner output holds, unless another thread
    // holds the lock: that one goes round again for us before it lets go.
    // True if this call put ciphertext in the output.
    bool encrypt(SendMode mode) {
      if (mode == SendMode::now) now_requested.store(true);
      encrypt_requested.store(true);
      bool wrote = false;
      while (encrypt_requested.load()) {
        std::unique_lock<std::mutex> lock(mutex, std::try_to_lock);
        if (!lock.owns_lock()) return wrote;
        while (encrypt_requested.exchange(false)) {
          wrote |= encrypt_locked(now_requested.exchange(false) ? SendMode::now : SendMode::queued);
        }
      }
      return wrote;
    }

    // After the lock was held for something else: a writer may have left its
    // bytes to us meanwhile.
    void encrypt_if_requested() {
      if (encrypt_requested.load()) encrypt(now_requested.load() ? SendMode::now : SendMode::queued);
    }

    bool encrypt_locked(SendMode mode) {
      if (ended || has_failed.load() || !handshake_done.load()) return false;
      inner->output().take(plaintext);
      // In pieces of a few records, each sent on as soon as it is made: the
      // first bytes of a large value leave while the rest is encrypted, and
      // OpenSSL's buffer never holds more than one piece.
      constexpr size_t piece = 4 * SSL3_RT_MAX_PLAIN_LENGTH;
      bool wrote = false;
      for (size_t done = 0; done < plaintext.size();) {
        const size_t size = std::min(piece, plaintext.size() - done);
        size_t written = 0;
        ERR_clear_error();
        if (SSL_write_ex(ssl.get(), plaintext.data() + done, size, &written) != 1) {
          fail_locked("TLS: cannot encrypt: " + detail::take_openssl_errors());
          break;
        }
        done += written;
        wrote |= send_locked(mode);
      }
      // The scratch buffer is kept, unless a large value made it huge.
      if (plaintext.capacity() > scratch_limit) {
        std::string().swap(plaintext);
      } else {
        plaintext.clear();
      }
      return wrote;
    }

    // Moves what OpenSSL wrote into the output; true if there was any.
    bool send_locked(SendMode mode) {
      const size_t size = BIO_ctrl_pending(out);
      if (size == 0) return false;
      output->write(
          [&](std::string& buffer) {
            const size_t at = buffer.size();
            buffer.resize(at + size);
            // A mem BIO read moves a pointer (BIO_reset would clear its
            // whole allocation every time).
            const int got = BIO_read(out, &buffer[at], static_cast<int>(size));
            buffer.resize(at + static_cast<size_t>(std::max(got, 0)));
          },
          mode);
      return true;
    }

    // Runs the handshake as far as the input allows; lock held.
    void step_handshake() {
      ERR_clear_error();
      const int result = SSL_do_handshake(ssl.get());
      if (result == 1) {
        handshake_done.store(true);
        context->deadlines.cancel(deadline);
        send_locked(SendMode::now);   // the last flight first
        encrypt_locked(SendMode::now);  // then what the inner session wrote meanwhile
        return;
      }
      const int error = SSL_get_error(ssl.get(), result);
      if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
        send_locked(SendMode::now);
        return;
      }
      fail_locked("TLS handshake failed: " + describe_failure(error));
    }

    // Decrypts all that the input makes whole into `plain`, which it may
    // grow; returns the plaintext's length. Lock held.
    size_t read_locked(std::string& plain) {
      // Plaintext is never longer than the ciphertext it came from, of which
      // OpenSSL may hold up to one record besides what is in the BIO.
      const size_t room = static_cast<size_t>(BIO_ctrl_pending(in)) + SSL3_RT_MAX_PLAIN_LENGTH + 1;
      if (plain.size() < room) plain.resize(room);
      size_t used = 0;
      for (;;) {
        if (used == plain.size()) plain.resize(plain.size() * 2);
        size_t got = 0;
        ERR_clear_error();
        const int result = SSL_read_ex(ssl.get(), &plain[used], plain.size() - used, &got);
        if (result == 1) {
          used += got;
          continue;
        }
        const int error = SSL_get_error(ssl.get(), result);
        // ZERO_RETURN: the peer's close_notify. Nothing more comes; the
        // transport sees the stream end, which is what ends us.
        if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_ZERO_RETURN) {
          fail_locked("TLS error: " + describe_failure(error));
        }
        return used;
      }
    }

    // A mem BIO keeps the largest allocation it ever needed: one left empty
    // after a large burst (a transport that delivers megabytes at once) is
    // replaced by a fresh one.
    void shrink_input_locked() {
      BUF_MEM* memory = nullptr;
      BIO_get_mem_ptr(in, &memory);
      if (!memory || memory->max <= scratch_limit || BIO_ctrl_pending(in) != 0) return;
      if (BIO* fresh = BIO_new(BIO_s_mem())) {
        SSL_set0_rbio(ssl.get(), fresh);  // frees the old one
        in = fresh;
      }
    }

    std::string describe_failure(int error) const {
      const unsigned long first = ERR_peek_error();
      std::string reason;
      if (error == SSL_ERROR_SYSCALL && first == 0) {
        reason = "unexpected end of the stream";
      } else {
        reason = detail::take_openssl_errors("protocol error");
      }
      const long verify = SSL_get_verify_result(ssl.get());
      if (verify != X509_V_OK) reason += std::string(": ") + X509_verify_cert_error_string(verify);
      if (ERR_GET_LIB(first) == ERR_LIB_SSL) {
        switch (ERR_GET_REASON(first)) {
          case SSL_R_WRONG_VERSION_NUMBER:
          case SSL_R_HTTP_REQUEST:
          case SSL_R_HTTPS_PROXY_REQUEST:
          case SSL_R_PACKET_LENGTH_TOO_LONG:
          case SSL_R_UNKNOWN_PROTOCOL:
            reason += " (the peer does not seem to speak TLS)";
            break;
          default:
            break;
        }
      }
      return reason;
    }

    // Lock held. The alert OpenSSL wrote (if any) still goes to the peer:
    // the transport sends a failed session's output before it closes.
    // The transport learns of it by a wake, whichever thread failed.
    void fail_locked(std::string why) {
      if (has_failed.load()) return;
      failure = std::move(why);
      has_failed.store(true);
      send_locked(SendMode::now);
      output->wake();
    }

    // Deadline thread.
    void time_out(std::chrono::milliseconds timeout) {
      std::lock_guard<std::mutex> lock(mutex);
      if (ended || has_failed.load() || handshake_done.load()) return;
      fail_locked("TLS handshake timed out after " + std::to_string(timeout.count()) + " ms");
    }

    // Transport thread, once the inner session has failed.
    void say_goodbye() {
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (goodbye_said || ended || has_failed.load() || !handshake_done.load()) return;
        goodbye_said = true;
        encrypt_locked(SendMode::now);  // its last words first
        ERR_clear_error();
        SSL_shutdown(ssl.get());
        send_locked(SendMode::now);
      }
      encrypt_if_requested();
    }
  };

  // A client's expectations of the host's certificate.
  void expect_peer_name(const TlsContext& context, const std::string& name) {
    SSL* ssl = core_->ssl.get();
    if (name.empty()) {
      if (context.is_insecure()) return;
      throw Error(codes::invalid_argument, "a TLS client needs the host's name to check its certificate");
    }
    unsigned char ip[sizeof(in6_addr)];
    const bool is_ip = inet_pton(AF_INET, name.c_str(), ip) == 1 || inet_pton(AF_INET6, name.c_str(), ip) == 1;
    // SNI carries names only (RFC 6066); an IP address is checked all the same.
    if (!is_ip && SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) {
      throw Error(codes::invalid_argument, "bad TLS server name \"" + name + "\"");
    }
    if (context.is_insecure()) return;
    // subjectAltName only, as browsers do: a common name that looks like a
    // host name proves nothing.
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str())
                         : SSL_set1_host(ssl, name.c_str());
    if (ok != 1) throw Error(codes::invalid_argument, "bad TLS server name \"" + name + "\"");
  }

  std::shared_ptr<Core> core_;
};

MANY_LEVEL_NAMESPACE_END

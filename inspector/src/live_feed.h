// A watch on a key range (Database::watch: the host's change feed) handed to
// the UI thread in coalesced bursts: the watch's callback, on the network
// thread, only appends to an inbox; the UI thread takes what arrived at most
// once every interval (75 ms by default), so ten thousand writes a second
// cost a few model updates a second, not ten thousand.
//
// States: starting (asked), live (the host has a change feed and took the
// watch), unsupported (LEVEL_NOT_SUPPORTED: a Node host; the caller polls
// instead), failed (any other error), off. Changes that cannot be delivered
// (LEVEL_WATCH_TOO_OLD, or more waiting than the inbox holds) are reported
// as lost(): the caller reloads and starts again.
#pragma once

#include <QObject>
#include <QString>
#include <QTimer>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "key_queries.hpp"
#include "many_level/database.hpp"
#include "many_level/watch.hpp"

namespace inspector {

class LiveFeed : public QObject {
  Q_OBJECT

 public:
  enum class State { off, starting, live, unsupported, failed };
  Q_ENUM(State)

  explicit LiveFeed(many_level::Database& db, QObject* parent = nullptr);
  // Closes the watch: once it returns, its callback no longer runs.
  ~LiveFeed() override;

  // Watches `bounds` (raw bytes), from now or, resuming, after `since`.
  // Replaces any watch before it; what it had buffered is dropped.
  void start(const KeyBounds& bounds, std::optional<uint64_t> since = std::nullopt);
  // Closes the watch; resumeSeq() says where to start again with nothing lost.
  void stop();

  State state() const { return state_; }
  QString errorText() const { return error_; }
  // After stop(): the seq of the last commit taken (or where the watch
  // started), to give start() as `since`; nullopt when there was no watch.
  std::optional<uint64_t> resumeSeq() const { return resume_seq_; }

  // Everything that arrived since the last take(), in commit order.
  std::vector<many_level::Commit> take();
  size_t buffered() const;

  void setInterval(int ms) { coalesce_.setInterval(ms); }
  // Operations the inbox holds before it gives up (lost()).
  void setMaxBuffered(size_t operations) { max_buffered_ = operations; }

 signals:
  // Changes are waiting in take(); at most once an interval.
  void changesReady();
  void stateChanged();
  // Changes were lost (the host's history no longer has them, or the UI fell
  // too far behind): reload, then start again.
  void lost();

 private:
  void onDelivery(uint64_t generation);
  void onError(uint64_t generation, const many_level::Error& error);
  void checkStarted();
  void setState(State state, const QString& error = QString());

  many_level::Database& db_;
  std::unique_ptr<many_level::Watch> watch_;
  State state_ = State::off;
  QString error_;
  std::optional<uint64_t> resume_seq_;
  QTimer coalesce_;
  QTimer started_check_;  // polls Guest::host_extension() while starting
  size_t max_buffered_ = 200000;

  // Shared with the watch's callback (network thread).
  mutable std::mutex mutex_;
  uint64_t generation_ = 0;  // of the current watch; deliveries of older ones are dropped
  std::vector<many_level::Commit> inbox_;
  size_t inbox_operations_ = 0;
  bool overflowed_ = false;
  bool posted_ = false;  // a delivery is queued to the UI thread
};

}  // namespace inspector

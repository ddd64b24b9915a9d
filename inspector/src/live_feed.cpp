#include "live_feed.h"

#include "many_level/guest/guest.hpp"

namespace inspector {

LiveFeed::LiveFeed(many_level::Database& db, QObject* parent) : QObject(parent), db_(db) {
  coalesce_.setSingleShot(true);
  coalesce_.setInterval(75);
  connect(&coalesce_, &QTimer::timeout, this, [this] {
    bool overflowed = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      posted_ = false;
      overflowed = overflowed_;
    }
    if (overflowed) {
      emit lost();
    } else {
      emit changesReady();
    }
  });
  started_check_.setInterval(100);
  connect(&started_check_, &QTimer::timeout, this, &LiveFeed::checkStarted);
}

LiveFeed::~LiveFeed() {
  if (watch_) watch_->close();
}

void LiveFeed::start(const KeyBounds& bounds, std::optional<uint64_t> since) {
  if (watch_) watch_->close();
  watch_.reset();
  uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    generation = ++generation_;
    inbox_.clear();
    inbox_operations_ = 0;
    overflowed_ = false;
    posted_ = false;
  }
  coalesce_.stop();
  resume_seq_.reset();
  setState(State::starting);

  many_level::WatchOptions options;
  options.gte = bounds.gte;
  options.lt = bounds.lt;
  options.since = since;
  options.key_encoding = "buffer";
  options.value_encoding = "buffer";
  try {
    // Runs on the thread that delivers (a guest's network thread): it only
    // fills the inbox and, once per burst, asks the UI thread to come.
    watch_ = db_.watch(options, [this, generation](std::optional<many_level::Error> error,
                                                   const many_level::Commit& commit) {
      if (error) {
        QMetaObject::invokeMethod(
            this, [this, generation, error = *error] { onError(generation, error); }, Qt::QueuedConnection);
        return;
      }
      bool post = false;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (generation != generation_ || overflowed_) return;
        if (inbox_operations_ + commit.operations.size() > max_buffered_) {
          overflowed_ = true;  // the UI cannot keep up: drop it all and reload
          inbox_.clear();
          inbox_operations_ = 0;
        } else {
          inbox_.push_back(commit);
          inbox_operations_ += commit.operations.size();
        }
        if (!posted_) post = posted_ = true;
      }
      if (post) QMetaObject::invokeMethod(this, [this, generation] { onDelivery(generation); }, Qt::QueuedConnection);
    });
  } catch (const many_level::Error& e) {
    onError(generation, e);
    return;
  }
  checkStarted();
  if (state_ == State::starting) started_check_.start();
}

void LiveFeed::stop() {
  started_check_.stop();
  coalesce_.stop();
  if (watch_) {
    watch_->close();
    std::lock_guard<std::mutex> lock(mutex_);
    // What was taken is applied; what waits in the inbox is not: resume
    // before the first commit still waiting.
    if (overflowed_) {
      resume_seq_.reset();
    } else {
      resume_seq_ = inbox_.empty() ? watch_->seq() : inbox_.front().seq - 1;
    }
    ++generation_;
    inbox_.clear();
    inbox_operations_ = 0;
    overflowed_ = false;
    posted_ = false;
  }
  watch_.reset();
  setState(State::off);
}

std::vector<many_level::Commit> LiveFeed::take() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<many_level::Commit> commits;
  commits.swap(inbox_);
  inbox_operations_ = 0;
  return commits;
}

size_t LiveFeed::buffered() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return inbox_operations_;
}

void LiveFeed::onDelivery(uint64_t generation) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (generation != generation_) return;
  }
  if (state_ == State::starting) setState(State::live);  // a commit came: the host took the watch
  if (!coalesce_.isActive()) coalesce_.start();
}

void LiveFeed::onError(uint64_t generation, const many_level::Error& error) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (generation != generation_) return;
  }
  started_check_.stop();
  if (error.is(many_level::codes::watch_too_old)) {
    emit lost();
    return;
  }
  if (watch_) watch_->close();
  if (error.is(many_level::codes::not_supported)) {
    setState(State::unsupported);
  } else if (error.is(many_level::codes::database_not_open)) {
    setState(State::off);  // the guest is closing
  } else {
    setState(State::failed, QString::fromStdString(error.what()));
  }
}

void LiveFeed::checkStarted() {
  if (state_ != State::starting) {
    started_check_.stop();
    return;
  }
  // A guest knows whether its host has the extension once the host has
  // answered anything; a local database watches at once.
  auto* guest = dynamic_cast<many_level::Guest*>(&db_);
  if (!guest) {
    setState(State::live);
    return;
  }
  switch (guest->host_extension()) {
    case many_level::HostExtension::available: setState(State::live); break;
    case many_level::HostExtension::unavailable: setState(State::unsupported); break;
    case many_level::HostExtension::unknown: break;
  }
}

void LiveFeed::setState(State state, const QString& error) {
  if (state == state_ && error == error_) return;
  state_ = state;
  error_ = error;
  if (state != State::starting) started_check_.stop();
  emit stateChanged();
}

}  // namespace inspector

// A guest's iterator: entries arrive in frames from the host; consuming a
// whole frame acknowledges it (the end-to-end backpressure of many-level),
// and a seek bumps seq so frames already in flight are recognised as stale.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "../iterator.hpp"
#include "../version.hpp"
#include "guest_core.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

class GuestIterator final : public Iterator {
 public:
  GuestIterator(std::shared_ptr<GuestCore> core, std::shared_ptr<IteratorChannel> channel,
                const IteratorOptions& options, std::shared_ptr<const Encoding> key_encoding,
                std::shared_ptr<const Encoding> value_encoding)
      : Iterator(options, std::move(key_encoding), std::move(value_encoding)),
        core_(std::move(core)),
        channel_(std::move(channel)) {}

  // Closed while do_close() can still run (see MemoryDatabase's iterator).
  ~GuestIterator() override { close(); }

  uint32_t id() const { return channel_->id; }

 protected:
  bool do_next(Entry& entry) override {
    std::vector<Entry> entries;
    take(1, entries);
    if (entries.empty()) return false;
    entry = std::move(entries.front());
    return true;
  }

  void do_nextv(size_t size, std::vector<Entry>& entries) override { take(size, entries); }

  void do_seek(std::string_view target) override {
    protocol::IteratorSeek seek;
    uint64_t stream;
    {
      std::lock_guard<std::mutex> lock(channel_->mutex);
      if (channel_->error) return;
      channel_->frames.clear();
      channel_->offset = 0;
      channel_->ended = false;
      seek.id = channel_->id;
      seek.seq = ++channel_->seq;
      seek.target = std::string(target);
      // Remembered until its result is consumed, to re-send on a new stream.
      channel_->seek_target = seek.target;
      channel_->bookmark.reset();
      stream = channel_->stream;
    }
    core_->send_control(seek, *channel_, stream);
  }

  void do_close() override { release(); }

 private:
  // Takes `size` entries, or fewer only at the end: like abstract-level's
  // nextv() (and many-level's guest, which loops next()), it waits for frames
  // still to come, acknowledging each frame it finishes so the host sends
  // more. An error with entries in hand returns them; the next call throws.
  void take(size_t size, std::vector<Entry>& entries) {
    const size_t before = entries.size();  // `entries` may hold earlier results
    const size_t wanted = before + size;
    for (;;) {
      std::vector<protocol::IteratorAck> acks;
      uint64_t stream;
      {
        std::unique_lock<std::mutex> lock(channel_->mutex);
        auto& ch = *channel_;
        ch.changed.wait(lock, [&] { return !ch.frames.empty() || ch.ended || ch.error; });
        stream = ch.stream;
        if (ch.frames.empty()) {
          if (ch.error && entries.size() == before) throw *ch.error;
          return;  // the end (or an error, reported by the next call)
        }
        const bool keys = ch.options.keys;
        const bool values = ch.options.values;
        const int64_t limit = ch.options.limit;
        while (entries.size() < wanted && !ch.frames.empty()) {
          auto& frame = ch.frames.front();
          Entry entry;
          if (keys) entry.key = std::move(frame[ch.offset++]);
          if (values && ch.offset < frame.size()) entry.value = std::move(frame[ch.offset++]);
          ++ch.consumed;
          ch.seek_target.reset();
          if (core_->retry()) ch.bookmark = entry.key;
          if (!wants_keys()) entry.key.clear();
          entries.push_back(std::move(entry));
          if (ch.offset >= frame.size()) {
            ch.frames.pop_front();
            ch.offset = 0;
            // Not needed once the guest wants no more, nor for an iterator
            // that failed (its host side is gone).
            if (!ch.error && (limit < 0 || ch.consumed < static_cast<uint64_t>(limit))) {
              acks.push_back({ch.id, ch.seq, ch.consumed});
            }
          }
        }
      }
      for (const auto& ack : acks) core_->send_control(ack, *channel_, stream);
      if (entries.size() >= wanted) return;
    }
  }

  void release() {
    if (released_) return;
    released_ = true;
    core_->close_iterator(channel_->id, channel_.get());
  }

  std::shared_ptr<GuestCore> core_;
  std::shared_ptr<IteratorChannel> channel_;
  bool released_ = false;
};

MANY_LEVEL_NAMESPACE_END

// Pumps a Session over standard streams: the mission's "any iostream-like
// stream". A blocking istream read cannot be woken, so input is read on the
// caller's thread and output is written by a thread of the pump's own.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <istream>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "../version.hpp"
#include "session.hpp"
#include "stats.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

namespace detail {

// Shared with the output listener, which may fire after the pump returned.
struct IostreamPumpState {
  std::mutex mutex;
  std::condition_variable changed;
  bool readable = true;  // check once at the start: output may already wait
  bool input_done = false;
  bool write_failed = false;
  std::string session_failure;  // seen by the writer on a wake
  // Bumped on every wake and every batch written: the reader, waiting for
  // the session to want input again, asks it after each bump. (Never asked
  // under this mutex: a session's wants_input() may take its own lock, and
  // sessions write output, which takes this one, while holding theirs.)
  std::uint64_t generation = 0;
};

}  // namespace detail

// Pumps until `in` ends (EOF or a read error), the session fails, or `out`
// fails; then writes the output still pending, calls session.end() and
// returns why it stopped. Reading pauses while session.wants_input() is false.
//
// Threads: the caller's thread reads `in` and calls session.receive() and
// end(); a writer thread waits for the output listener and writes to `out`
// (flushed after each batch), so a peer that needs our replies before it
// sends more never deadlocks against us. Input is read as one byte (the only
// read that waits) followed by whatever the stream has buffered (readsome),
// so a chunk never waits for bytes that are not coming yet. Reading pauses
// while the session's output is at its high-water mark.
//
// A blocking read cannot be interrupted: when `out` fails, or the session
// fails on a wake of its output (rather than in receive()), its pending
// output is written at once but the pump returns only when the next input
// arrives or `in` ends. With std::cin, call
// std::ios::sync_with_stdio(false) first, or readsome() sees nothing buffered
// and input goes one byte per receive().
inline std::string pump_iostream(std::istream& in, std::ostream& out, Session& session,
                                 TransportStats* stats = nullptr) {
  TransportStats local_stats;
  TransportStats& counters = stats ? *stats : local_stats;
  OutputBuffer& output = session.output();
  auto state = std::make_shared<detail::IostreamPumpState>();
  std::weak_ptr<detail::IostreamPumpState> weak = state;
  output.on_readable([weak] {
    if (auto alive = weak.lock()) {
      {
        std::lock_guard<std::mutex> lock(alive->mutex);
        alive->readable = true;
        ++alive->generation;
      }
      alive->changed.notify_all();
    }
  });

  std::thread writer([&] {
    for (;;) {
      bool finishing;
      {
        std::unique_lock<std::mutex> lock(state->mutex);
        state->changed.wait(lock, [&] { return state->readable || state->input_done; });
        state->readable = false;
        finishing = state->input_done;
      }
      // A wake may be the session asking to be closed: its output still goes.
      std::string failure = session.failed();
      bool ok = true;
      try {
        // Until empty: bytes appended while we write raise no new signal.
        for (std::string_view pending = output.peek(); !pending.empty(); pending = output.peek()) {
          out.write(pending.data(), static_cast<std::streamsize>(pending.size()));
          if (!out) {
            ok = false;
            break;
          }
          counters.add_out(pending.size());
          output.consume(pending.size());
        }
        if (ok && !out.flush()) ok = false;
      } catch (...) {
        ok = false;  // an ostream with exceptions() set
      }
      {
        std::lock_guard<std::mutex> lock(state->mutex);
        if (!ok) state->write_failed = true;
        if (!failure.empty()) state->session_failure = failure;
        ++state->generation;
      }
      state->changed.notify_all();  // a reader may wait for room
      if (!ok || finishing || !failure.empty()) return;
    }
  });

  std::string reason = "input ended";
  auto stopped_by_writer = [&] {
    std::lock_guard<std::mutex> lock(state->mutex);
    if (state->write_failed) {
      reason = "write error";
    } else if (!state->session_failure.empty()) {
      reason = "session failed: " + state->session_failure;
    } else {
      return false;
    }
    return true;
  };
  std::vector<char> buffer(64 * 1024);
  try {
    for (;;) {
      if (stopped_by_writer()) break;
      std::uint64_t seen;
      {
        std::lock_guard<std::mutex> lock(state->mutex);
        seen = state->generation;
      }
      if (!session.wants_input()) {
        std::unique_lock<std::mutex> lock(state->mutex);
        state->changed.wait(lock, [&] { return state->generation != seen || state->write_failed; });
        continue;
      }
      in.read(buffer.data(), 1);
      if (in.gcount() == 0) break;
      std::streamsize more = in.readsome(buffer.data() + 1, static_cast<std::streamsize>(buffer.size() - 1));
      const size_t size = 1 + static_cast<size_t>(std::max<std::streamsize>(more, 0));
      counters.add_in(size);
      session.receive(buffer.data(), size);
      std::string failure = session.failed();
      if (!failure.empty()) {
        reason = "session failed: " + failure;
        break;
      }
    }
  } catch (const std::exception& error) {
    reason = std::string("error: ") + error.what();
  }
  {
    std::lock_guard<std::mutex> lock(state->mutex);
    state->input_done = true;
  }
  state->changed.notify_all();
  writer.join();
  if (reason == "input ended") stopped_by_writer();
  output.on_readable(nullptr);
  session.end();
  return reason;
}

MANY_LEVEL_NAMESPACE_END

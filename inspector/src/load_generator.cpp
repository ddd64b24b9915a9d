#include "load_generator.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <future>
#include <optional>
#include <random>

namespace inspector {

using Clock = std::chrono::steady_clock;

LoadGenerator::LoadGenerator(many_level::Guest& guest, QObject* parent) : QObject(parent), guest_(guest) {
  qRegisterMetaType<inspector::LoadWindow>();
  window_start_ = Clock::now();
  window_timer_.setInterval(1000);
  connect(&window_timer_, &QTimer::timeout, this, [this] { emit windowReady(takeWindow()); });
}

LoadGenerator::~LoadGenerator() { stop(); }

void LoadGenerator::setSettings(const LoadSettings& settings) {
  std::lock_guard<std::mutex> lock(settings_mutex_);
  settings_ = settings;
  settings_.rate = std::max(1, settings_.rate);
  settings_.key_space = std::max(1, settings_.key_space);
  settings_.put_percent = std::clamp(settings_.put_percent, 0, 100);
  settings_.del_percent = std::clamp(settings_.del_percent, 0, 100 - settings_.put_percent);
  settings_.value_size = std::max(0, settings_.value_size);
  settings_.max_in_flight = std::max<size_t>(1, settings_.max_in_flight);
}

LoadSettings LoadGenerator::settings() const {
  std::lock_guard<std::mutex> lock(settings_mutex_);
  return settings_;
}

void LoadGenerator::start() {
  if (thread_.joinable()) return;
  running_ = true;
  takeWindow();
  thread_ = std::thread([this] { run(); });
  window_timer_.start();
  emit runningChanged(true);
}

void LoadGenerator::stop() {
  if (!thread_.joinable()) return;
  running_ = false;
  wake_.notify_all();
  thread_.join();
  window_timer_.stop();
  emit windowReady(takeWindow());
  emit runningChanged(false);
}

LoadWindow LoadGenerator::takeWindow() {
  std::lock_guard<std::mutex> lock(stats_mutex_);
  LoadWindow window = window_;
  const auto now = Clock::now();
  window.seconds = std::chrono::duration<double>(now - window_start_).count();
  window.in_flight = in_flight_;
  if (!latencies_ms_.empty()) {
    std::sort(latencies_ms_.begin(), latencies_ms_.end());
    const auto at = [&](double q) {
      return latencies_ms_[std::min(latencies_ms_.size() - 1, static_cast<size_t>(q * latencies_ms_.size()))];
    };
    window.p50_ms = at(0.50);
    window.p99_ms = at(0.99);
    window.max_ms = latencies_ms_.back();
  }
  window_ = LoadWindow();
  latencies_ms_.clear();
  window_start_ = now;
  return window;
}

void LoadGenerator::run() {
  enum class Op { put, get, del };
  struct InFlight {
    Clock::time_point start;
    std::future<void> write;
    std::future<std::optional<std::string>> read;
    bool ready() const {
      return read.valid() ? read.wait_for(std::chrono::seconds(0)) == std::future_status::ready
                          : write.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    }
    void wait_until(Clock::time_point deadline) const {
      if (read.valid()) {
        read.wait_until(deadline);
      } else {
        write.wait_until(deadline);
      }
    }
  };

  std::mt19937 random(12345);
  std::deque<InFlight> in_flight;
  Clock::time_point next_issue = Clock::now();
  uint64_t sequence = 0;

  const auto finish = [&](InFlight& item, Clock::time_point now) {
    std::string error;
    try {
      if (item.read.valid()) {
        item.read.get();
      } else {
        item.write.get();
      }
    } catch (const many_level::Error& e) {
      if (!e.is(many_level::codes::not_found)) error = e.what();
    } catch (const std::exception& e) {
      error = e.what();
    }
    const double ms = std::chrono::duration<double, std::milli>(now - item.start).count();
    std::lock_guard<std::mutex> lock(stats_mutex_);
    ++window_.completed;
    if (!error.empty()) {
      ++window_.failed;
      window_.last_error = QString::fromStdString(error);
    }
    latencies_ms_.push_back(ms);
    ++total_completed_;
  };

  while (running_) {
    const LoadSettings s = settings();
    const auto interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / s.rate));
    auto now = Clock::now();

    // Issue what is due, unless too much is already waiting.
    for (int burst = 0; next_issue <= now && in_flight.size() < s.max_in_flight && burst < 1000; ++burst) {
      const int dice = static_cast<int>(random() % 100);
      const Op op = dice < s.put_percent ? Op::put : dice < s.put_percent + s.del_percent ? Op::del : Op::get;
      char number[16];
      std::snprintf(number, sizeof number, "%06u", static_cast<unsigned>(random() % static_cast<unsigned>(s.key_space)));
      const std::string key = s.prefix + number;
      InFlight item;
      item.start = now;
      try {
        switch (op) {
          case Op::put: {
            std::string value = "{\"seq\":" + std::to_string(++sequence) + ",\"pad\":\"";
            value.append(static_cast<size_t>(std::max(0, s.value_size - static_cast<int>(value.size()) - 2)), 'x');
            value += "\"}";
            item.write = guest_.put_async(key, value);
            break;
          }
          case Op::del: item.write = guest_.del_async(key); break;
          case Op::get: item.read = guest_.get_async(key); break;
        }
      } catch (const std::exception& e) {
        // The guest is closed: nothing more to do.
        std::lock_guard<std::mutex> lock(stats_mutex_);
        window_.last_error = QString::fromStdString(e.what());
        running_ = false;
        break;
      }
      {
        std::lock_guard<std::mutex> lock(stats_mutex_);
        ++window_.issued;
        ++(op == Op::put ? window_.puts : op == Op::get ? window_.gets : window_.dels);
      }
      in_flight.push_back(std::move(item));
      next_issue += interval;
    }
    // Capped or far behind: do not build up a burst to fire later.
    if (next_issue + std::chrono::seconds(1) < now) next_issue = now;

    // Collect answers. The host answers a connection mostly in order, so the
    // oldest are the ones to look at; a bounded look keeps this cheap.
    now = Clock::now();
    size_t looked = 0;
    for (auto it = in_flight.begin(); it != in_flight.end() && looked < 4096; ++looked) {
      if (it->ready()) {
        finish(*it, now);
        it = in_flight.erase(it);
      } else {
        ++it;
      }
    }
    in_flight_ = in_flight.size();

    // Sleep until the oldest answer or the next issue, whichever is first.
    const auto deadline = std::min(next_issue, Clock::now() + std::chrono::milliseconds(50));
    if (!in_flight.empty() && in_flight.size() < s.max_in_flight) {
      in_flight.front().wait_until(deadline);
    } else if (!in_flight.empty()) {
      in_flight.front().wait_until(Clock::now() + std::chrono::milliseconds(50));
    } else {
      std::unique_lock<std::mutex> lock(stats_mutex_);
      wake_.wait_until(lock, deadline, [&] { return !running_; });
    }
  }
  in_flight_ = 0;
}

}  // namespace inspector

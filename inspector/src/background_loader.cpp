#include "background_loader.h"

#include <algorithm>

namespace inspector {

BackgroundLoader::BackgroundLoader(std::string name) : name_(std::move(name)), thread_([this] { run(); }) {}

BackgroundLoader::~BackgroundLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    queue_.clear();
  }
  wake_.notify_all();
  thread_.join();
}

void BackgroundLoader::submit(QObject* context, std::string key, int priority, Job job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    auto queued = std::find_if(queue_.begin(), queue_.end(), [&](const Item& item) { return item.key == key; });
    if (queued != queue_.end()) {
      queued->job = std::move(job);
      queued->priority = std::max(queued->priority, priority);
      queued->order = ++order_;
      queued->context = context;
      return;
    }
    pending_.insert(key);
    queue_.push_back(Item{std::move(key), priority, ++order_, context, std::move(job)});
  }
  wake_.notify_one();
}

bool BackgroundLoader::pending(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return pending_.count(key) > 0;
}

void BackgroundLoader::cancel_if(const std::function<bool(const std::string&)>& drop) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (drop(it->key)) {
      pending_.erase(pending_.find(it->key));
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
}

void BackgroundLoader::cancel_all() {
  cancel_if([](const std::string&) { return true; });
}

bool BackgroundLoader::idle() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return pending_.empty();
}

size_t BackgroundLoader::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

void BackgroundLoader::delivered(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = pending_.find(key);
  if (found != pending_.end()) pending_.erase(found);
}

void BackgroundLoader::run() {
  for (;;) {
    Item item;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      auto best = std::max_element(queue_.begin(), queue_.end(), [](const Item& a, const Item& b) {
        return a.priority != b.priority ? a.priority < b.priority : a.order < b.order;
      });
      item = std::move(*best);
      queue_.erase(best);
    }
    Delivery delivery;
    try {
      delivery = item.job();
    } catch (...) {
      // Jobs report their own failures; one that throws anyway delivers nothing.
    }
    QObject* context = item.context.data();
    if (!delivery || !context) {
      delivered(item.key);
      continue;
    }
    // The delivery clears the key when it runs. A loader is its context's
    // member, so it cannot be gone while the context still takes events;
    // the guard only protects a loader replaced in between.
    QMetaObject::invokeMethod(
        context,
        [this, alive = std::weak_ptr<int>(alive_), key = item.key, delivery = std::move(delivery)] {
          if (alive.expired()) return;
          delivered(key);
          delivery();
        },
        Qt::QueuedConnection);
  }
}

}  // namespace inspector

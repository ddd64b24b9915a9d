// Runs blocking database calls off the UI thread, as DB Browser for SQLite's
// RowLoader does for its table model: one thread, one job at a time, the
// highest priority first and, among equals, the newest first (the page the
// user scrolled to last matters most). A job returns a delivery, which runs
// on the thread of the job's context object (queued), where the model
// applies the result.
//
// Jobs carry a key ("page:<anchor>"): submitting a key already waiting
// replaces that job, and a key stays pending until its delivery has run, so
// a model never asks twice for what is on its way. Queued jobs can be
// cancelled; a running one cannot (a Guest call cannot be interrupted, it
// ends when the host answers or the guest is closed).
#pragma once

#include <QObject>
#include <QPointer>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace inspector {

class BackgroundLoader {
 public:
  using Delivery = std::function<void()>;
  using Job = std::function<Delivery()>;

  enum Priority : int { background = 0, refresh = 10, visible = 20, user = 30 };

  explicit BackgroundLoader(std::string name = "loader");
  // Drops queued jobs and waits for the running one.
  ~BackgroundLoader();

  BackgroundLoader(const BackgroundLoader&) = delete;
  BackgroundLoader& operator=(const BackgroundLoader&) = delete;

  void submit(QObject* context, std::string key, int priority, Job job);
  // Queued, running, or delivered but not applied yet.
  bool pending(const std::string& key) const;
  void cancel_if(const std::function<bool(const std::string& key)>& drop);
  void cancel_all();
  // Nothing queued, running or waiting to be delivered.
  bool idle() const;
  size_t queued() const;

 private:
  struct Item {
    std::string key;
    int priority = 0;
    uint64_t order = 0;
    QPointer<QObject> context;
    Job job;
  };

  void run();
  void delivered(const std::string& key);

  const std::string name_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Item> queue_;
  std::multiset<std::string> pending_;  // every key from submit until delivered or dropped
  uint64_t order_ = 0;
  bool stopping_ = false;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // expires with the loader
  std::thread thread_;
};

}  // namespace inspector

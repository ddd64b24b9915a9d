// The leader/follower queue behind SqliteDatabase's writes, on its own: who
// commits what, in which groups, and who hears about which failure.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "many_level/sqlite/group_commit.hpp"

using many_level::detail::sqlite::GroupCommit;

namespace {

struct Request {
  int thread = 0;
  int sequence = 0;
  bool fail_alone = false;
  bool fail_group = false;
};

using Queue = GroupCommit<Request>;

// Waits for `condition` up to a bound; false when it never came.
template <typename Condition>
bool eventually(Condition condition) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

}  // namespace

TEST(GroupCommit, ALoneWriterCommitsItsOwnRequest) {
  std::vector<std::vector<int>> groups;
  Queue queue([&](std::vector<Queue::Ticket*>& group) {
    groups.emplace_back();
    for (auto* ticket : group) groups.back().push_back(ticket->request->sequence);
  });
  Request first{0, 1};
  Request second{0, 2};
  queue.submit(first);
  queue.submit(second);
  EXPECT_EQ(groups, (std::vector<std::vector<int>>{{1}, {2}}));
  EXPECT_EQ(queue.queued(), 0u);
}

TEST(GroupCommit, WritersQueuedDuringACommitShareTheNextOne) {
  constexpr int followers = 7;
  std::mutex mutex;
  std::vector<size_t> group_sizes;
  std::atomic<bool> first_commit_running{false};
  Queue* queue_ptr = nullptr;
  bool followers_queued = false;
  Queue queue([&](std::vector<Queue::Ticket*>& group) {
    bool first;
    {
      std::lock_guard<std::mutex> lock(mutex);
      first = group_sizes.empty();
      group_sizes.push_back(group.size());
    }
    if (first) {
      first_commit_running = true;
      // Hold the first commit until every follower waits in the queue.
      followers_queued = eventually([&] { return queue_ptr->queued() == followers; });
    }
  });
  queue_ptr = &queue;

  std::thread leader([&] {
    Request request{0, 0};
    queue.submit(request);
  });
  ASSERT_TRUE(eventually([&] { return first_commit_running.load(); }));
  std::vector<std::thread> threads;
  for (int t = 1; t <= followers; ++t) {
    threads.emplace_back([&, t] {
      Request request{t, 0};
      queue.submit(request);
    });
  }
  leader.join();
  for (auto& thread : threads) thread.join();

  ASSERT_TRUE(followers_queued);
  EXPECT_EQ(group_sizes, (std::vector<size_t>{1, followers}));
}

TEST(GroupCommit, EveryRequestIsCommittedOnceAndEachThreadsOrderHolds) {
  constexpr int threads_count = 8;
  constexpr int per_thread = 500;
  std::vector<std::vector<int>> seen(threads_count);  // only the leader touches it
  size_t commits = 0;
  Queue queue([&](std::vector<Queue::Ticket*>& group) {
    ++commits;
    for (auto* ticket : group) seen[ticket->request->thread].push_back(ticket->request->sequence);
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < threads_count; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        Request request{t, i};
        queue.submit(request);
      }
    });
  }
  for (auto& thread : threads) thread.join();

  std::vector<int> expected(per_thread);
  for (int i = 0; i < per_thread; ++i) expected[i] = i;
  for (int t = 0; t < threads_count; ++t) EXPECT_EQ(seen[t], expected) << "thread " << t;
  EXPECT_LE(commits, static_cast<size_t>(threads_count * per_thread));
}

TEST(GroupCommit, AFailureOfOneRequestReachesOnlyItsWriter) {
  Queue queue([&](std::vector<Queue::Ticket*>& group) {
    for (auto* ticket : group) {
      if (ticket->request->fail_alone) ticket->error = std::make_exception_ptr(std::runtime_error("alone"));
    }
  });
  Request good{0, 1};
  Request bad{0, 2, true};
  EXPECT_NO_THROW(queue.submit(good));
  try {
    queue.submit(bad);
    FAIL() << "expected the request's own error";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "alone");
  }
  EXPECT_NO_THROW(queue.submit(good));  // the queue goes on after a failure
}

TEST(GroupCommit, AFailedCommitFailsEveryRequestOfItsGroup) {
  constexpr int followers = 3;
  Queue* queue_ptr = nullptr;
  std::atomic<bool> blocking{false};
  Queue queue([&](std::vector<Queue::Ticket*>& group) {
    bool fail = false;
    for (auto* ticket : group) fail = fail || ticket->request->fail_group;
    if (group.size() == 1 && !fail) {
      blocking = true;
      eventually([&] { return queue_ptr->queued() == followers; });
      return;
    }
    if (fail) throw std::runtime_error("group");
  });
  queue_ptr = &queue;

  std::thread leader([&] {
    Request request{0, 0};
    queue.submit(request);
  });
  ASSERT_TRUE(eventually([&] { return blocking.load(); }));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 1; t <= followers; ++t) {
    threads.emplace_back([&, t] {
      Request request{t, 0, false, t == 2};
      try {
        queue.submit(request);
      } catch (const std::runtime_error& e) {
        if (std::string(e.what()) == "group") ++failures;
      }
    });
  }
  leader.join();
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), followers);
}

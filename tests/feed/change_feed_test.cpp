// ChangeFeed: sequence and order, the bounded history (by commits and by
// bytes), resuming (too old, from the future), listeners and their lifetime,
// and publishing from many threads while others read.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "many_level/change_feed.hpp"

using namespace many_level;

namespace {

using Commits = std::vector<std::shared_ptr<const Commit>>;

std::vector<BatchOperation> put_of(const std::string& key, const std::string& value = "v") {
  return {BatchOperation::put(key, value)};
}

std::vector<uint64_t> seqs_of(const Commits& commits) {
  std::vector<uint64_t> out;
  for (const auto& commit : commits) out.push_back(commit->seq);
  return out;
}

Commits read_all(const ChangeFeed& feed, uint64_t after) {
  Commits out;
  EXPECT_EQ(feed.read(after, SIZE_MAX, SIZE_MAX, out), ChangeFeed::ReadStatus::ok);
  return out;
}

// A listener that does nothing, to make the feed record.
std::unique_ptr<ChangeFeed::Subscription> record(const std::shared_ptr<ChangeFeed>& feed) {
  return ChangeFeed::subscribe(feed, [] {});
}

TEST(ChangeFeed, NumbersCommitsWithoutRecordingWhileNobodySubscribed) {
  auto feed = std::make_shared<ChangeFeed>();
  EXPECT_EQ(feed->last_seq(), 0u);
  int built = 0;
  EXPECT_EQ(feed->publish_with([&] {
    ++built;
    return put_of("a");
  }),
            1u);
  EXPECT_EQ(feed->publish(put_of("b")), 2u);
  EXPECT_EQ(built, 0) << "operations are built only while the feed records";
  EXPECT_EQ(feed->last_seq(), 2u);
  EXPECT_EQ(feed->history_commits(), 0u);
  // Nothing before the first subscriber can be resumed from, but "now" can.
  EXPECT_FALSE(feed->can_resume_after(0));
  EXPECT_FALSE(feed->can_resume_after(1));
  EXPECT_TRUE(feed->can_resume_after(2));
}

TEST(ChangeFeed, RecordsInOrderFromTheFirstSubscriber) {
  auto feed = std::make_shared<ChangeFeed>();
  feed->publish(put_of("before"));
  auto subscription = record(feed);
  for (int i = 0; i < 5; ++i) feed->publish(put_of("k" + std::to_string(i), std::to_string(i)));
  auto commits = read_all(*feed, 1);
  ASSERT_EQ(seqs_of(commits), (std::vector<uint64_t>{2, 3, 4, 5, 6}));
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(commits[i]->operations, put_of("k" + std::to_string(i), std::to_string(i)));
  }
  EXPECT_EQ(seqs_of(read_all(*feed, 4)), (std::vector<uint64_t>{5, 6}));
  EXPECT_TRUE(read_all(*feed, 6).empty());
  // Recording goes on after the last subscriber leaves: later watchers may resume.
  subscription.reset();
  feed->publish(put_of("after"));
  EXPECT_EQ(seqs_of(read_all(*feed, 5)), (std::vector<uint64_t>{6, 7}));
}

TEST(ChangeFeed, ReadHonoursMaxCommitsAndMaxBytesButAlwaysGivesOne) {
  auto feed = std::make_shared<ChangeFeed>();
  auto subscription = record(feed);
  for (int i = 0; i < 10; ++i) feed->publish(put_of("k", std::string(100, 'x')));
  Commits out;
  ASSERT_EQ(feed->read(0, 3, SIZE_MAX, out), ChangeFeed::ReadStatus::ok);
  EXPECT_EQ(seqs_of(out), (std::vector<uint64_t>{1, 2, 3}));
  const size_t weight = out.front()->weight();
  out.clear();
  ASSERT_EQ(feed->read(3, SIZE_MAX, 2 * weight, out), ChangeFeed::ReadStatus::ok);
  EXPECT_EQ(seqs_of(out), (std::vector<uint64_t>{4, 5}));
  out.clear();
  ASSERT_EQ(feed->read(5, SIZE_MAX, 1, out), ChangeFeed::ReadStatus::ok);
  EXPECT_EQ(seqs_of(out), (std::vector<uint64_t>{6})) << "a commit larger than max_bytes still comes alone";
}

TEST(ChangeFeed, HistoryIsTrimmedByCommits) {
  ChangeHistoryOptions history;
  history.max_commits = 3;
  auto feed = std::make_shared<ChangeFeed>(history);
  auto subscription = record(feed);
  for (int i = 0; i < 10; ++i) feed->publish(put_of("k"));
  EXPECT_EQ(feed->history_commits(), 3u);
  EXPECT_EQ(seqs_of(read_all(*feed, 7)), (std::vector<uint64_t>{8, 9, 10}));
  EXPECT_TRUE(feed->can_resume_after(7));
  EXPECT_FALSE(feed->can_resume_after(6));
  Commits out;
  EXPECT_EQ(feed->read(6, SIZE_MAX, SIZE_MAX, out), ChangeFeed::ReadStatus::too_old);
  EXPECT_TRUE(out.empty());
}

TEST(ChangeFeed, HistoryIsTrimmedByBytesKeepingTheLastCommit) {
  const size_t weight = Commit{1, put_of("k", std::string(1000, 'x'))}.weight();
  ChangeHistoryOptions history;
  history.max_bytes = 3 * weight + weight / 2;
  auto feed = std::make_shared<ChangeFeed>(history);
  auto subscription = record(feed);
  for (int i = 0; i < 10; ++i) feed->publish(put_of("k", std::string(1000, 'x')));
  EXPECT_EQ(feed->history_commits(), 3u);
  EXPECT_LE(feed->history_bytes(), history.max_bytes);
  EXPECT_EQ(feed->history_bytes(), 3 * weight);
  // One commit larger than the whole budget is still kept, alone.
  feed->publish(put_of("big", std::string(10 * weight, 'y')));
  EXPECT_EQ(feed->history_commits(), 1u);
  EXPECT_TRUE(feed->can_resume_after(10));
  EXPECT_FALSE(feed->can_resume_after(9));
}

TEST(ChangeFeed, ASeqFromTheFutureCannotBeResumed) {
  auto feed = std::make_shared<ChangeFeed>();
  auto subscription = record(feed);
  feed->publish(put_of("a"));
  EXPECT_TRUE(feed->can_resume_after(0));
  EXPECT_TRUE(feed->can_resume_after(1));
  EXPECT_FALSE(feed->can_resume_after(2));
  EXPECT_FALSE(feed->can_resume_after(UINT64_MAX));
  Commits out;
  EXPECT_EQ(feed->read(5, SIZE_MAX, SIZE_MAX, out), ChangeFeed::ReadStatus::too_old);
}

TEST(ChangeFeed, ListenersRunAfterEachCommitUntilUnsubscribed) {
  auto feed = std::make_shared<ChangeFeed>();
  int first = 0;
  int second = 0;
  auto a = ChangeFeed::subscribe(feed, [&] { ++first; });
  auto b = ChangeFeed::subscribe(feed, [&] { ++second; });
  EXPECT_EQ(feed->listeners(), 2u);
  feed->publish(put_of("x"));
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 1);
  a.reset();
  EXPECT_EQ(feed->listeners(), 1u);
  feed->publish(put_of("y"));
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 2);
  // record_with() alone notifies nobody; notify() does.
  feed->record_with([] { return put_of("z"); });
  EXPECT_EQ(second, 2);
  feed->notify();
  EXPECT_EQ(second, 3);
}

TEST(ChangeFeed, ListenerSeesItsCommitInTheHistory) {
  auto feed = std::make_shared<ChangeFeed>();
  std::vector<uint64_t> seen;
  auto subscription = ChangeFeed::subscribe(feed, [&] { seen.push_back(feed->last_seq()); });
  feed->publish(put_of("a"));
  feed->publish(put_of("b"));
  EXPECT_EQ(seen, (std::vector<uint64_t>{1, 2}));
}

TEST(ChangeFeed, ASubscriptionOutlivingItsFeedIsHarmless) {
  auto feed = std::make_shared<ChangeFeed>();
  auto subscription = ChangeFeed::subscribe(feed, [] {});
  feed.reset();
  subscription.reset();
}

TEST(ChangeFeed, AListenerMayDestroyItsOwnSubscriptionAndPublishAgain) {
  auto feed = std::make_shared<ChangeFeed>();
  std::unique_ptr<ChangeFeed::Subscription> subscription;
  int calls = 0;
  subscription = ChangeFeed::subscribe(feed, [&] {
    ++calls;
    if (calls == 1) feed->publish(put_of("re-entrant"));  // runs this listener again, nested
    if (calls == 2) subscription.reset();
  });
  feed->publish(put_of("a"));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(subscription, nullptr);
  feed->publish(put_of("b"));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(feed->listeners(), 0u);
}

TEST(ChangeFeed, UnsubscribingWaitsForACallInProgressOnAnotherThread) {
  auto feed = std::make_shared<ChangeFeed>();
  std::mutex mutex;
  std::condition_variable changed;
  bool entered = false;
  bool release = false;
  std::atomic<bool> finished{false};
  auto subscription = ChangeFeed::subscribe(feed, [&] {
    std::unique_lock<std::mutex> lock(mutex);
    entered = true;
    changed.notify_all();
    changed.wait(lock, [&] { return release; });
    finished = true;
  });
  std::thread publisher([&] { feed->publish(put_of("a")); });
  {
    std::unique_lock<std::mutex> lock(mutex);
    changed.wait(lock, [&] { return entered; });
  }
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::lock_guard<std::mutex> lock(mutex);
    release = true;
    changed.notify_all();
  });
  subscription.reset();
  EXPECT_TRUE(finished) << "the subscription went while its listener still ran";
  publisher.join();
  releaser.join();
}

TEST(ChangeFeed, PublishersOnManyThreadsAndReadersSeeOneContiguousOrder) {
  ChangeHistoryOptions history;
  history.max_commits = 1000000;
  auto feed = std::make_shared<ChangeFeed>(history);
  constexpr int kThreads = 8;
  constexpr int kEach = 2000;
  std::atomic<uint64_t> notified{0};
  auto subscription = ChangeFeed::subscribe(feed, [&] { notified.fetch_add(1); });
  std::atomic<bool> done{false};
  // A reader pulling as it goes, as a watcher does: it must see every
  // sequence once, in order, each commit's content matching its writer.
  std::vector<uint64_t> seen;
  std::thread reader([&] {
    uint64_t cursor = 0;
    for (;;) {
      bool last_round = done.load();
      Commits out;
      EXPECT_EQ(feed->read(cursor, 100, SIZE_MAX, out), ChangeFeed::ReadStatus::ok);
      for (const auto& commit : out) {
        seen.push_back(commit->seq);
        cursor = commit->seq;
      }
      if (out.empty() && last_round) return;
      if (out.empty()) std::this_thread::yield();
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) feed->publish(put_of("t" + std::to_string(t), std::to_string(i)));
    });
  }
  for (auto& writer : writers) writer.join();
  done = true;
  reader.join();
  ASSERT_EQ(seen.size(), static_cast<size_t>(kThreads * kEach));
  for (size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i], i + 1);
  EXPECT_EQ(notified.load(), static_cast<uint64_t>(kThreads * kEach));
  // Each writer's values arrive in its own order.
  std::vector<int> next(kThreads, 0);
  for (const auto& commit : read_all(*feed, 0)) {
    const auto& op = commit->operations.at(0);
    int t = std::stoi(op.key.substr(1));
    ASSERT_EQ(op.value, std::to_string(next[t]++));
  }
}

TEST(ChangeFeed, OperationsInFiltersByPrefixAndRangeAndStripsThePrefix) {
  Commit commit;
  commit.seq = 7;
  commit.operations = {BatchOperation::put("!a!x", "1"), BatchOperation::del("!a!y"), BatchOperation::put("!b!x", "2"),
                       BatchOperation::put("!a!z", "3"), BatchOperation::put("x", "4")};
  KeyRange all;
  EXPECT_EQ(operations_in(commit, "!a!", all),
            (std::vector<BatchOperation>{BatchOperation::put("x", "1"), BatchOperation::del("y"),
                                         BatchOperation::put("z", "3")}));
  RangeOptions range;
  range.gt = "x";
  range.lt = "z";
  EXPECT_EQ(operations_in(commit, "!a!", KeyRange::from(range)),
            (std::vector<BatchOperation>{BatchOperation::del("y")}));
  EXPECT_EQ(operations_in(commit, "", all).size(), 5u);
  EXPECT_TRUE(operations_in(commit, "!c!", all).empty());
}

}  // namespace

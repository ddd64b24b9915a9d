// Decoding frames for the frame log, and the recorder that captures them.
#include <QtTest>

#include "frame_recorder.hpp"
#include "frame_summary.hpp"
#include "many_level/protocol/protocol.hpp"

namespace protocol = many_level::protocol;
using many_level::FrameDirection;

// The payload of a frame (no length prefix), as the frame observer sees it.
template <typename M>
static std::string payload(const M& message) {
  std::string frame;
  protocol::encode(frame, message);
  size_t prefix = 1;
  while (static_cast<unsigned char>(frame[prefix - 1]) & 0x80) ++prefix;
  return frame.substr(prefix);
}

class TestFrameSummary : public QObject {
  Q_OBJECT

 private slots:
  void guestMessages() {
    auto f = inspector::summarize(FrameDirection::out, payload(protocol::PutRequest{7, "k\x01", std::string("vvv")}));
    QCOMPARE(f.tag_name, std::string("put"));
    QCOMPARE(f.id, std::optional<uint32_t>(7));
    QVERIFY(f.summary.find("key=\"k\\x01\"") != std::string::npos);
    QVERIFY(f.summary.find("value=3 B") != std::string::npos);

    protocol::IteratorRequest iterator;
    iterator.id = 3;
    iterator.seq = 2;
    iterator.options.gte = "a";
    iterator.options.limit = 10;
    iterator.options.values = false;
    iterator.bookmark = "m";
    f = inspector::summarize(FrameDirection::out, payload(iterator));
    QCOMPARE(f.tag_name, std::string("iterator"));
    QCOMPARE(f.seq, std::optional<uint64_t>(2));
    QCOMPARE(f.summary, std::string("keys gte=\"a\" limit=10 bookmark=\"m\""));

    f = inspector::summarize(FrameDirection::out, payload(protocol::IteratorAck{3, 2, 41}));
    QCOMPARE(f.tag_name, std::string("iteratorAck"));
    QCOMPARE(f.summary, std::string("consumed=41"));

    protocol::BatchRequest batch;
    batch.id = 9;
    batch.ops.push_back({protocol::BatchOp::Type::put, "a", std::string("1")});
    batch.ops.push_back({protocol::BatchOp::Type::del, "b", std::nullopt});
    f = inspector::summarize(FrameDirection::out, payload(batch));
    QCOMPARE(f.items, size_t(2));
    QVERIFY(f.detail.find("del \"b\"") != std::string::npos);
  }

  void hostMessages() {
    protocol::IteratorData data;
    data.id = 3;
    data.seq = 1;
    data.data = {"k1", "v1", "k2", "v2"};
    auto f = inspector::summarize(FrameDirection::in, payload(data));
    QCOMPARE(f.tag_name, std::string("iteratorData"));
    QCOMPARE(f.id, std::optional<uint32_t>(3));
    QCOMPARE(f.items, size_t(4));
    QVERIFY(f.summary.find("first \"k1\"") != std::string::npos);

    f = inspector::summarize(FrameDirection::in, payload(protocol::Callback{5, std::string("LEVEL_READONLY"), std::nullopt}));
    QCOMPARE(f.tag_name, std::string("callback"));
    QCOMPARE(f.summary, std::string("error LEVEL_READONLY"));

    f = inspector::summarize(FrameDirection::in, payload(protocol::IteratorEnd{3, 1}));
    QCOMPARE(f.tag_name, std::string("iteratorEnd"));
    QCOMPARE(f.seq, std::optional<uint64_t>(1));
  }

  // The extension's frames: negotiation, a watch and its commits, a snapshot.
  void extensionMessages() {
    auto f = inspector::summarize(FrameDirection::out, payload(protocol::Hello{1, {"has", "watch"}, std::nullopt}));
    QCOMPARE(f.tag_name, std::string("hello"));
    QVERIFY(!f.id);
    QCOMPARE(f.summary, std::string("version=1 features=has,watch"));

    protocol::WatchRequest watch;
    watch.id = 4;
    watch.range.gte = "!a!";
    watch.since = 17;
    f = inspector::summarize(FrameDirection::out, payload(watch));
    QCOMPARE(f.tag_name, std::string("watch"));
    QCOMPARE(f.id, std::optional<uint32_t>(4));
    QCOMPARE(f.summary, std::string("range: gte=\"!a!\" since=17"));

    f = inspector::summarize(FrameDirection::out, payload(protocol::SnapshotRelease{6}));
    QCOMPARE(f.tag_name, std::string("snapshotRelease"));
    QCOMPARE(f.id, std::optional<uint32_t>(6));  // the snapshot's id, so id=6 finds it

    protocol::WatchData data;
    data.id = 4;
    data.commits.push_back({18, {{protocol::BatchOp::Type::put, "!a!k", std::string("v")}}});
    data.commits.push_back({20, {{protocol::BatchOp::Type::del, "!a!j", std::nullopt},
                                 {protocol::BatchOp::Type::del, "!a!k", std::nullopt}}});
    f = inspector::summarize(FrameDirection::in, payload(data));
    QCOMPARE(f.tag_name, std::string("watchData"));
    QCOMPARE(f.seq, std::optional<uint64_t>(20));
    QCOMPARE(f.items, size_t(3));
    QCOMPARE(f.summary, std::string("2 commits, 3 ops, seq 18..20"));
    QVERIFY(f.detail.find("#18 put \"!a!k\" = \"v\"") != std::string::npos);
    QVERIFY(f.detail.find("#20 del \"!a!j\"") != std::string::npos);

    f = inspector::summarize(FrameDirection::in, payload(protocol::WatchError{4, "LEVEL_WATCH_TOO_OLD"}));
    QCOMPARE(f.summary, std::string("error LEVEL_WATCH_TOO_OLD"));
  }

  void oddPayloads() {
    auto f = inspector::summarize(FrameDirection::in, std::string("\x09\x01", 2));
    QCOMPARE(f.tag_name, std::string("unknown"));
    f = inspector::summarize(FrameDirection::in, std::string("\x00\xff", 2));  // a Callback that does not decode
    QCOMPARE(f.tag_name, std::string("callback"));
    QVERIFY(f.malformed);
    f = inspector::summarize(FrameDirection::out, std::string());
    QCOMPARE(f.tag_name, std::string("empty"));
  }

  void recorderIsBoundedAndPausable() {
    inspector::FrameRecorder recorder(3, 1000, 100);
    recorder.record(FrameDirection::out, "a");
    recorder.record(FrameDirection::in, std::string(500, 'x'));  // over max_payload: size only
    recorder.record(FrameDirection::in, "c");
    recorder.record(FrameDirection::in, "d");  // the inbox holds 3
    QCOMPARE(recorder.dropped(), uint64_t(1));
    auto frames = recorder.drain();
    QCOMPARE(frames.size(), size_t(3));
    QCOMPARE(frames[0].number, uint64_t(1));
    QVERIFY(frames[1].truncated);
    QCOMPARE(frames[1].size, size_t(500));
    QVERIFY(frames[1].payload.empty());
    recorder.set_capturing(false);
    recorder.record(FrameDirection::out, "e");
    QCOMPARE(recorder.skipped(), uint64_t(1));
    QVERIFY(recorder.drain().empty());
    QCOMPARE(recorder.seen(), uint64_t(5));
  }
};

QTEST_APPLESS_MAIN(TestFrameSummary)
#include "test_frame_summary.moc"

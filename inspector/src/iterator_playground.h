// The iterator playground: open one iterator with chosen options (range,
// reverse, limit, keys/values), step it with next, nextv(n) and seek, and
// watch its row in the iterators view and its frames in the frame log: the
// first data frame carries one entry, later ones more; each frame consumed
// sends an ack; a seek bumps seq and makes frames in flight stale.
// Steps block until the host answers, so they run on a worker thread, one
// at a time; the widget shows "waiting" meanwhile.
#pragma once

#include <QWidget>

#include <memory>
#include <optional>

#include "background_loader.h"
#include "iterator_labels.hpp"
#include "many_level/database.hpp"

class QCheckBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;

namespace inspector {

class IteratorPlayground : public QWidget {
  Q_OBJECT

 public:
  IteratorPlayground(many_level::Database& db, IteratorLabels& labels, QWidget* parent = nullptr);
  ~IteratorPlayground() override;

  // The options as the fields give them (bounds unescaped).
  many_level::IteratorOptions optionsFromFields() const;

  void open(const many_level::IteratorOptions& options);
  void next();
  void nextv(int count);
  void seek(const std::string& target);
  void close();

  bool isOpen() const { return iterator_ != nullptr; }
  bool isBusy() const { return busy_; }
  // The guest iterator's id (0 when not a guest iterator or none is open).
  uint32_t iteratorId() const { return id_; }
  uint64_t received() const { return received_; }
  QPlainTextEdit* output() const { return output_; }

 signals:
  void opened(quint32 id);
  // A step ended with `entries` new entries (0 at the end), or an error.
  void stepped(int entries, bool ended, const QString& error);
  void closed();

 private:
  void run(const QString& what, std::function<std::vector<many_level::Entry>(many_level::Iterator&)> step);
  void updateButtons();
  void appendLine(const QString& line);

  many_level::Database& db_;
  IteratorLabels& labels_;
  std::shared_ptr<many_level::Iterator> iterator_;
  uint32_t id_ = 0;
  uint64_t received_ = 0;
  bool busy_ = false;
  bool ended_ = false;

  QLineEdit* gt_;
  QLineEdit* gte_;
  QLineEdit* lt_;
  QLineEdit* lte_;
  QSpinBox* limit_;
  QCheckBox* reverse_;
  QCheckBox* keys_;
  QCheckBox* values_;
  QPushButton* open_;
  QPushButton* next_;
  QPushButton* nextv_;
  QSpinBox* nextv_count_;
  QPushButton* seek_;
  QLineEdit* seek_target_;
  QPushButton* close_;
  QLabel* state_;
  QPlainTextEdit* output_;
  // Last member: destroyed first.
  BackgroundLoader worker_{"playground"};
};

}  // namespace inspector

#include "iterator_playground.h"

#include <QCheckBox>
#include <QFontDatabase>
#include <QFormLayout>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>

#include "bytes_text.hpp"
#include "many_level/guest/guest_iterator.hpp"

namespace inspector {

IteratorPlayground::IteratorPlayground(many_level::Database& db, IteratorLabels& labels, QWidget* parent)
    : QWidget(parent), db_(db), labels_(labels) {
  gt_ = new QLineEdit;
  gte_ = new QLineEdit;
  lt_ = new QLineEdit;
  lte_ = new QLineEdit;
  for (QLineEdit* edit : {gt_, gte_, lt_, lte_}) {
    edit->setPlaceholderText(tr("(none)"));
    edit->setToolTip(tr("A key as UTF-8; \\xNN is a byte"));
  }
  limit_ = new QSpinBox;
  limit_->setRange(-1, 1000000000);
  limit_->setValue(-1);
  limit_->setSpecialValueText(tr("no limit"));
  reverse_ = new QCheckBox(tr("reverse"));
  keys_ = new QCheckBox(tr("keys"));
  keys_->setChecked(true);
  values_ = new QCheckBox(tr("values"));
  values_->setChecked(true);

  auto* options = new QGroupBox(tr("Options"));
  auto* grid = new QGridLayout(options);
  grid->addWidget(new QLabel(tr("gt")), 0, 0);
  grid->addWidget(gt_, 0, 1);
  grid->addWidget(new QLabel(tr("gte")), 0, 2);
  grid->addWidget(gte_, 0, 3);
  grid->addWidget(new QLabel(tr("lt")), 1, 0);
  grid->addWidget(lt_, 1, 1);
  grid->addWidget(new QLabel(tr("lte")), 1, 2);
  grid->addWidget(lte_, 1, 3);
  grid->addWidget(new QLabel(tr("limit")), 2, 0);
  grid->addWidget(limit_, 2, 1);
  auto* flags = new QHBoxLayout;
  flags->addWidget(reverse_);
  flags->addWidget(keys_);
  flags->addWidget(values_);
  grid->addLayout(flags, 2, 2, 1, 2);

  open_ = new QPushButton(tr("Open"));
  next_ = new QPushButton(tr("next()"));
  nextv_ = new QPushButton(tr("nextv(n)"));
  nextv_count_ = new QSpinBox;
  nextv_count_->setRange(1, 100000);
  nextv_count_->setValue(10);
  seek_ = new QPushButton(tr("seek()"));
  seek_target_ = new QLineEdit;
  seek_target_->setPlaceholderText(tr("target key"));
  close_ = new QPushButton(tr("Close"));
  state_ = new QLabel(tr("no iterator open"));

  auto* steps = new QHBoxLayout;
  steps->addWidget(open_);
  steps->addWidget(next_);
  steps->addWidget(nextv_);
  steps->addWidget(nextv_count_);
  steps->addWidget(seek_);
  steps->addWidget(seek_target_, 1);
  steps->addWidget(close_);

  output_ = new QPlainTextEdit;
  output_->setReadOnly(true);
  output_->setMaximumBlockCount(5000);
  output_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));

  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(options);
  layout->addLayout(steps);
  layout->addWidget(state_);
  layout->addWidget(output_, 1);

  connect(open_, &QPushButton::clicked, this, [this] { open(optionsFromFields()); });
  connect(next_, &QPushButton::clicked, this, &IteratorPlayground::next);
  connect(nextv_, &QPushButton::clicked, this, [this] { nextv(nextv_count_->value()); });
  connect(seek_, &QPushButton::clicked, this, [this] {
    if (auto target = unescape_bytes(seek_target_->text().toStdString())) seek(*target);
  });
  connect(close_, &QPushButton::clicked, this, &IteratorPlayground::close);
  updateButtons();
}

IteratorPlayground::~IteratorPlayground() { worker_.cancel_all(); }

many_level::IteratorOptions IteratorPlayground::optionsFromFields() const {
  many_level::IteratorOptions options;
  const auto bound = [](QLineEdit* edit) -> std::optional<std::string> {
    if (edit->text().isEmpty()) return std::nullopt;
    return unescape_bytes(edit->text().toStdString());
  };
  options.gt = bound(gt_);
  options.gte = bound(gte_);
  options.lt = bound(lt_);
  options.lte = bound(lte_);
  options.limit = limit_->value();
  options.reverse = reverse_->isChecked();
  options.keys = keys_->isChecked();
  options.values = values_->isChecked();
  return options;
}

void IteratorPlayground::open(const many_level::IteratorOptions& requested) {
  if (busy_) return;
  if (iterator_) close();
  many_level::IteratorOptions options = requested;
  options.key_encoding = "buffer";
  options.value_encoding = "buffer";
  busy_ = true;
  updateButtons();
  many_level::Database* db = &db_;
  IteratorLabels* labels = &labels_;
  worker_.submit(this, "open", BackgroundLoader::user, [this, db, labels, options]() -> BackgroundLoader::Delivery {
    std::shared_ptr<many_level::Iterator> iterator;
    QString error;
    try {
      iterator = db->iterator(options);
      labels->label(*iterator, options, "playground");
    } catch (const std::exception& e) {
      error = QString::fromStdString(e.what());
    }
    return [this, iterator, error, options] {
      busy_ = false;
      if (!iterator) {
        appendLine(tr("open failed: %1").arg(error));
        updateButtons();
        return;
      }
      iterator_ = iterator;
      auto* guest_iterator = dynamic_cast<many_level::GuestIterator*>(iterator.get());
      id_ = guest_iterator ? guest_iterator->id() : 0;
      received_ = 0;
      ended_ = false;
      appendLine(tr("opened iterator #%1: %2").arg(id_).arg(QString::fromStdString(IteratorLabels::describe(options))));
      updateButtons();
      emit opened(id_);
    };
  });
}

void IteratorPlayground::next() {
  run(tr("next()"), [](many_level::Iterator& it) {
    std::vector<many_level::Entry> entries;
    if (auto entry = it.next()) entries.push_back(std::move(*entry));
    return entries;
  });
}

void IteratorPlayground::nextv(int count) {
  run(tr("nextv(%1)").arg(count), [count](many_level::Iterator& it) { return it.nextv(static_cast<size_t>(count)); });
}

void IteratorPlayground::seek(const std::string& target) {
  const QString shown = QString::fromStdString(escape_bytes(target));
  run(tr("seek(\"%1\")").arg(shown), [target](many_level::Iterator& it) {
    it.seek(target);
    return std::vector<many_level::Entry>();
  });
}

void IteratorPlayground::run(const QString& what,
                             std::function<std::vector<many_level::Entry>(many_level::Iterator&)> step) {
  if (!iterator_ || busy_) return;
  busy_ = true;
  state_->setText(tr("%1: waiting for the host…").arg(what));
  updateButtons();
  auto iterator = iterator_;
  const bool is_seek = what.startsWith(QLatin1String("seek"));
  worker_.submit(this, "step", BackgroundLoader::user, [this, iterator, step, what, is_seek]() -> BackgroundLoader::Delivery {
    std::vector<many_level::Entry> entries;
    QString error;
    try {
      entries = step(*iterator);
    } catch (const std::exception& e) {
      error = QString::fromStdString(e.what());
    }
    auto shared = std::make_shared<std::vector<many_level::Entry>>(std::move(entries));
    return [this, shared, error, what, is_seek] {
      busy_ = false;
      if (!error.isEmpty()) {
        appendLine(tr("%1 failed: %2").arg(what, error));
      } else if (is_seek) {
        ended_ = false;
        appendLine(what);
      } else if (shared->empty()) {
        ended_ = true;
        appendLine(tr("%1 → end").arg(what));
      } else {
        for (const auto& entry : *shared) {
          appendLine(QStringLiteral("%1 → %2 = %3")
                         .arg(what, QString::fromStdString(escape_bytes(entry.key, 80)),
                              QString::fromStdString(escape_bytes(entry.value, 80))));
        }
      }
      received_ += shared->size();
      updateButtons();
      emit stepped(static_cast<int>(shared->size()), !is_seek && shared->empty() && error.isEmpty(), error);
    };
  });
}

void IteratorPlayground::close() {
  if (!iterator_) return;
  auto iterator = std::move(iterator_);
  iterator_.reset();
  // close() does not wait for the host, but it waits for a step in progress
  // (an iterator serializes its calls), so it runs on the worker too.
  worker_.submit(this, "close", BackgroundLoader::user, [iterator]() -> BackgroundLoader::Delivery {
    iterator->close();
    return [] {};
  });
  appendLine(tr("closed iterator #%1").arg(id_));
  id_ = 0;
  busy_ = false;
  updateButtons();
  emit closed();
}

void IteratorPlayground::appendLine(const QString& line) { output_->appendPlainText(line); }

void IteratorPlayground::updateButtons() {
  const bool open = iterator_ != nullptr;
  open_->setEnabled(!busy_);
  next_->setEnabled(open && !busy_);
  nextv_->setEnabled(open && !busy_);
  seek_->setEnabled(open && !busy_);
  close_->setEnabled(open);
  if (!busy_) {
    state_->setText(open ? tr("iterator #%1 open · %2 entries received%3")
                               .arg(id_)
                               .arg(received_)
                               .arg(ended_ ? tr(" · at the end") : QString())
                         : tr("no iterator open"));
  }
}

}  // namespace inspector

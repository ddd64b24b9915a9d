#include "key_browser.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFontDatabase>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScrollBar>
#include <QSplitter>
#include <QTableView>
#include <QTimer>
#include <QTreeView>
#include <QVBoxLayout>

#include "bytes_text.hpp"
#include "key_list_model.h"
#include "sublevel_tree_model.h"

namespace inspector {

KeyBrowser::KeyBrowser(many_level::Database& db, QueryHooks hooks, Prompter& prompter, QWidget* parent)
    : QWidget(parent), db_(db), prompter_(prompter) {
  model_ = new KeyListModel(db, hooks, this);
  tree_model_ = new SublevelTreeModel(db, hooks, this);

  tree_ = new QTreeView;
  tree_->setModel(tree_model_);
  tree_->setHeaderHidden(true);
  tree_->setMinimumWidth(160);

  prefix_ = new QLineEdit;
  prefix_->setPlaceholderText(tr("key prefix"));
  from_ = new QLineEdit;
  from_->setPlaceholderText(tr("from (gte)"));
  to_ = new QLineEdit;
  to_->setPlaceholderText(tr("to (lt)"));
  goto_ = new QLineEdit;
  goto_->setPlaceholderText(tr("go to key"));
  for (QLineEdit* edit : {prefix_, from_, to_, goto_}) {
    edit->setToolTip(tr("Typed as UTF-8; \\xNN is a byte, \\\\ a backslash"));
  }
  auto* apply = new QPushButton(tr("Filter"));
  auto* reload = new QPushButton(tr("Reload"));
  live_ = new QCheckBox(tr("Live"));
  live_->setChecked(true);
  live_->setToolTip(tr("Follow the host's change feed, so writes of other guests appear, change and vanish "
                       "as they happen (highlighted); a host without one (Node) is polled every second "
                       "instead; off keeps the frame log quiet"));
  auto_count_ = new QCheckBox(tr("Count all"));
  auto_count_->setChecked(true);
  auto_count_->setToolTip(tr("Count the keys of the range in the background (keys only, a page anchor kept "
                             "every %1 keys) so the scroll bar covers them all").arg(model_->pageSize()));

  auto* filters = new QHBoxLayout;
  filters->addWidget(prefix_, 2);
  filters->addWidget(from_, 2);
  filters->addWidget(to_, 2);
  filters->addWidget(apply);
  filters->addWidget(goto_, 2);
  filters->addWidget(live_);
  filters->addWidget(auto_count_);
  filters->addWidget(reload);

  table_ = new QTableView;
  table_->setModel(model_);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setSelectionMode(QAbstractItemView::SingleSelection);
  table_->verticalHeader()->setDefaultSectionSize(table_->fontMetrics().height() + 6);
  table_->verticalHeader()->setSectionResizeMode(QHeaderView::Fixed);
  table_->horizontalHeader()->setSectionResizeMode(KeyListModel::KeyColumn, QHeaderView::Interactive);
  table_->horizontalHeader()->setSectionResizeMode(KeyListModel::ValueColumn, QHeaderView::Stretch);
  table_->horizontalHeader()->setSectionResizeMode(KeyListModel::SizeColumn, QHeaderView::ResizeToContents);
  table_->setColumnWidth(KeyListModel::KeyColumn, 260);
  table_->setWordWrap(false);

  status_ = new QLabel;
  read_only_label_ = new QLabel;
  read_only_label_->setStyleSheet(QStringLiteral("color: darkred; font-weight: bold"));
  read_only_label_->hide();

  format_ = new QComboBox;
  for (auto format : {ValueFormat::utf8, ValueFormat::hex, ValueFormat::json}) {
    format_->addItem(formatName(format), static_cast<int>(format));
  }
  value_ = new QPlainTextEdit;
  value_->setReadOnly(true);
  value_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  value_note_ = new QLabel;
  new_ = new QPushButton(tr("New…"));
  edit_ = new QPushButton(tr("Edit…"));
  delete_ = new QPushButton(tr("Delete…"));

  auto* value_bar = new QHBoxLayout;
  value_bar->addWidget(new QLabel(tr("Value as")));
  value_bar->addWidget(format_);
  value_bar->addWidget(value_note_, 1);
  value_bar->addWidget(new_);
  value_bar->addWidget(edit_);
  value_bar->addWidget(delete_);

  auto* value_pane = new QWidget;
  auto* value_layout = new QVBoxLayout(value_pane);
  value_layout->setContentsMargins(0, 0, 0, 0);
  value_layout->addLayout(value_bar);
  value_layout->addWidget(value_, 1);

  auto* keys_pane = new QWidget;
  auto* keys_layout = new QVBoxLayout(keys_pane);
  keys_layout->setContentsMargins(0, 0, 0, 0);
  keys_layout->addLayout(filters);
  keys_layout->addWidget(read_only_label_);
  keys_layout->addWidget(table_, 1);
  keys_layout->addWidget(status_);

  auto* right = new QSplitter(Qt::Vertical);
  right->addWidget(keys_pane);
  right->addWidget(value_pane);
  right->setStretchFactor(0, 3);
  right->setStretchFactor(1, 1);
  auto* split = new QSplitter(Qt::Horizontal);
  split->addWidget(tree_);
  split->addWidget(right);
  split->setStretchFactor(1, 1);
  split->setSizes({200, 800});
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(split);

  connect(apply, &QPushButton::clicked, this, &KeyBrowser::applyFilter);
  for (QLineEdit* edit : {prefix_, from_, to_}) connect(edit, &QLineEdit::returnPressed, this, &KeyBrowser::applyFilter);
  connect(goto_, &QLineEdit::returnPressed, this, [this] {
    auto key = unescape_bytes(goto_->text().toStdString());
    if (key) model_->locateKey(model_->basePrefix() + *key);
  });
  connect(model_, &KeyListModel::keyLocated, this, [this](int row) { selectRow(row); });
  connect(reload, &QPushButton::clicked, this, [this] {
    model_->reload();
    tree_model_->reload();
    fetchTree();
  });
  connect(auto_count_, &QCheckBox::toggled, model_, &KeyListModel::setAutoCount);
  connect(live_, &QCheckBox::toggled, model_, &KeyListModel::setLive);
  connect(model_, &KeyListModel::statusChanged, this, [this] { status_->setText(model_->statusText()); });
  connect(model_, &KeyListModel::modelReset, this, [this] {
    selected_key_.reset();
    selected_value_.reset();
    showValue();
    updateVisibleRows();
  });
  connect(model_, &KeyListModel::rowsInserted, this, &KeyBrowser::updateVisibleRows);
  connect(model_, &KeyListModel::rowsRemoved, this, &KeyBrowser::updateVisibleRows);
  connect(model_, &KeyListModel::dataChanged, this, [this](const QModelIndex& first, const QModelIndex& last) {
    // The selected row was rewritten by someone: show its new value.
    const QModelIndex current = table_->currentIndex();
    if (current.isValid() && current.row() >= first.row() && current.row() <= last.row()) onSelectionChanged();
  });
  connect(table_->verticalScrollBar(), &QScrollBar::valueChanged, this, &KeyBrowser::updateVisibleRows);
  connect(table_->selectionModel(), &QItemSelectionModel::currentRowChanged, this, &KeyBrowser::onSelectionChanged);
  connect(tree_->selectionModel(), &QItemSelectionModel::currentChanged, this, &KeyBrowser::onTreeSelection);
  connect(format_, &QComboBox::currentIndexChanged, this, &KeyBrowser::showValue);
  connect(new_, &QPushButton::clicked, this, &KeyBrowser::newEntry);
  connect(edit_, &QPushButton::clicked, this, &KeyBrowser::editEntry);
  connect(delete_, &QPushButton::clicked, this, &KeyBrowser::deleteEntry);

  fetchTree();
  tree_->setCurrentIndex(tree_model_->databaseIndex());
  status_->setText(model_->statusText());
  updateButtons();
}

KeyBrowser::~KeyBrowser() { worker_.cancel_all(); }

void KeyBrowser::fetchTree() {
  // A view fetches what it shows only once it is laid out, which a hidden
  // tab never is: the top level is asked for here, so it is known by the
  // time the tab is opened.
  const QModelIndex database = tree_model_->databaseIndex();
  if (tree_model_->canFetchMore(database)) tree_model_->fetchMore(database);
  tree_->expand(database);
}

void KeyBrowser::setReadOnly(bool read_only, const QString& why) {
  read_only_ = read_only;
  read_only_label_->setText(why.isEmpty() ? tr("Read-only host: editing is off") : why);
  read_only_label_->setVisible(read_only);
  updateButtons();
}

void KeyBrowser::setValueFormat(ValueFormat format) { format_->setCurrentIndex(format_->findData(static_cast<int>(format))); }

void KeyBrowser::browsePrefix(const std::string& prefix) {
  model_->setBasePrefix(prefix);
  const QModelIndex index = tree_model_->indexOfPrefix(prefix);
  if (index.isValid() && tree_->currentIndex() != index) tree_->setCurrentIndex(index);
}

void KeyBrowser::applyFilter() {
  KeyListModel::Filter filter;
  filter.prefix = unescape_bytes(prefix_->text().toStdString()).value_or(std::string());
  filter.from = unescape_bytes(from_->text().toStdString()).value_or(std::string());
  filter.to = unescape_bytes(to_->text().toStdString()).value_or(std::string());
  model_->setFilter(filter);
}

void KeyBrowser::onTreeSelection() {
  const QModelIndex current = tree_->currentIndex();
  if (!current.isValid()) return;
  const std::string prefix = tree_model_->prefixOf(current);
  if (prefix != model_->basePrefix()) model_->setBasePrefix(prefix);
}

void KeyBrowser::updateVisibleRows() {
  const int first = table_->rowAt(0);
  int last = table_->rowAt(table_->viewport()->height() - 1);
  if (first < 0) {
    model_->setVisibleRows(0, static_cast<int>(model_->pageSize()) - 1);
    return;
  }
  if (last < 0) last = model_->rowCount() - 1;
  model_->setVisibleRows(first, last);
}

void KeyBrowser::selectRow(int row) {
  if (row < 0 || row >= model_->rowCount()) return;
  const QModelIndex index = model_->index(row, KeyListModel::KeyColumn);
  table_->setCurrentIndex(index);
  table_->scrollTo(index, QAbstractItemView::PositionAtCenter);
  updateVisibleRows();
}

std::optional<std::string> KeyBrowser::selectedKey() const { return selected_key_; }

QString KeyBrowser::shownKey(const std::string& raw_key) const { return model_->displayKey(raw_key); }

void KeyBrowser::onSelectionChanged() {
  const QModelIndex current = table_->currentIndex();
  const KeyListModel::Row* row = current.isValid() ? model_->peekRow(current.row()) : nullptr;
  if (!row) {
    selected_key_.reset();
    selected_value_.reset();
    showValue();
    return;
  }
  const bool same_key = selected_key_ && *selected_key_ == row->key;
  selected_key_ = row->key;
  if (row->value_size <= row->value.size()) {
    selected_value_ = row->value;
    showValue();
    emit valueShown();
    return;
  }
  // Only a preview is cached: read the whole value off the UI thread.
  if (!same_key) selected_value_.reset();
  showValue();
  const uint64_t request = ++value_request_;
  const std::string key = row->key;
  many_level::Database* db = &db_;
  worker_.submit(this, "value", BackgroundLoader::user, [this, db, key, request]() -> BackgroundLoader::Delivery {
    std::optional<std::string> value;
    QString error;
    try {
      value = db->try_get(key, many_level::ReadOptions{"buffer", "buffer"});
    } catch (const std::exception& e) {
      error = QString::fromStdString(e.what());
    }
    return [this, request, key, value, error] {
      if (request != value_request_ || !selected_key_ || *selected_key_ != key) return;
      selected_value_ = value;
      showValue();
      if (!error.isEmpty()) value_note_->setText(error);
      if (value) emit valueShown();
    };
  });
}

void KeyBrowser::showValue() {
  value_note_->clear();
  if (!selected_key_) {
    value_->setPlainText(QString());
    updateButtons();
    return;
  }
  if (!selected_value_) {
    value_->setPlainText(tr("(reading the value…)"));
    updateButtons();
    return;
  }
  QString note;
  const auto format = static_cast<ValueFormat>(format_->currentData().toInt());
  value_->setPlainText(formatValue(*selected_value_, format, &note));
  value_note_->setText(tr("%1 bytes").arg(selected_value_->size()) + (note.isEmpty() ? QString() : QStringLiteral(" · ") + note));
  updateButtons();
}

void KeyBrowser::updateButtons() {
  const bool can_write = !read_only_ && !writing_;
  new_->setEnabled(can_write);
  edit_->setEnabled(can_write && selected_key_ && selected_value_);
  delete_->setEnabled(can_write && selected_key_.has_value());
}

void KeyBrowser::newEntry() {
  if (read_only_ || writing_) return;
  auto entry = prompter_.editEntry(this, EntryEdit{}, false);
  if (!entry) return;
  const std::string key = model_->basePrefix() + entry->key;
  const QString shown = QString::fromStdString(escape_bytes(key));
  if (!prompter_.confirm(this, tr("Put"), tr("Put %1 (%2 bytes)?").arg(shown).arg(entry->value.size()))) return;
  write(key, entry->value, tr("put %1").arg(shown));
}

void KeyBrowser::editEntry() {
  if (read_only_ || writing_ || !selected_key_ || !selected_value_) return;
  const std::string key = *selected_key_;
  EntryEdit initial;
  initial.key = key.substr(key.rfind(model_->basePrefix(), 0) == 0 ? model_->basePrefix().size() : 0);
  initial.value = *selected_value_;
  auto entry = prompter_.editEntry(this, initial, true);
  if (!entry) return;
  const QString shown = QString::fromStdString(escape_bytes(key));
  if (!prompter_.confirm(this, tr("Overwrite"), tr("Overwrite the value of %1 (%2 bytes)?").arg(shown).arg(entry->value.size()))) {
    return;
  }
  write(key, entry->value, tr("put %1").arg(shown));
}

void KeyBrowser::deleteEntry() {
  if (read_only_ || writing_ || !selected_key_) return;
  const std::string key = *selected_key_;
  const QString shown = QString::fromStdString(escape_bytes(key));
  if (!prompter_.confirm(this, tr("Delete"), tr("Delete %1?").arg(shown))) return;
  write(key, std::nullopt, tr("del %1").arg(shown));
}

void KeyBrowser::write(const std::string& key, const std::optional<std::string>& value, const QString& what) {
  writing_ = true;
  updateButtons();
  many_level::Database* db = &db_;
  worker_.submit(this, "write", BackgroundLoader::user, [this, db, key, value, what]() -> BackgroundLoader::Delivery {
    QString error;
    bool readonly = false;
    try {
      const many_level::WriteOptions raw{"buffer", "buffer"};
      if (value) {
        db->put(key, *value, raw);
      } else {
        db->del(key, raw);
      }
    } catch (const many_level::Error& e) {
      error = QString::fromStdString(e.what());
      readonly = e.is(many_level::codes::readonly);
    } catch (const std::exception& e) {
      error = QString::fromStdString(e.what());
    }
    return [this, what, error, readonly, key, value] {
      writing_ = false;
      if (readonly) setReadOnly(true, tr("Read-only host: it refused a write with LEVEL_READONLY; editing is off"));
      if (error.isEmpty()) {
        status_->setText(tr("%1: done").arg(what));
        if (selected_key_ && *selected_key_ == key) {
          selected_value_ = value;
          if (!value) selected_key_.reset();
          showValue();
        }
        model_->refresh();
      } else {
        status_->setText(tr("%1 failed: %2").arg(what, error));
      }
      updateButtons();
      emit writeFinished(error.isEmpty(), error);
    };
  });
}

}  // namespace inspector

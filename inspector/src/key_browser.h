// The keys tab: a tree of sublevels on the left; on the right the keys of
// the chosen one, filtered by prefix and range, paged lazily (KeyListModel)
// and kept live (the host's change feed, or polling); below, the selected value as utf8, hex or pretty JSON,
// and put / edit / delete, each confirmed first. Writes run on a worker
// thread; a host that answers LEVEL_READONLY turns editing off.
#pragma once

#include <QWidget>

#include <optional>
#include <string>

#include "background_loader.h"
#include "key_queries.hpp"
#include "many_level/database.hpp"
#include "prompter.h"
#include "value_format.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QTableView;
class QTreeView;

namespace inspector {

class KeyListModel;
class SublevelTreeModel;

class KeyBrowser : public QWidget {
  Q_OBJECT

 public:
  // `prompter` must outlive the browser.
  KeyBrowser(many_level::Database& db, QueryHooks hooks, Prompter& prompter, QWidget* parent = nullptr);
  ~KeyBrowser() override;

  KeyListModel* model() const { return model_; }
  SublevelTreeModel* treeModel() const { return tree_model_; }
  QTableView* table() const { return table_; }
  QTreeView* tree() const { return tree_; }
  QPlainTextEdit* valueView() const { return value_; }
  QComboBox* formatBox() const { return format_; }
  QPushButton* newButton() const { return new_; }
  QPushButton* editButton() const { return edit_; }
  QPushButton* deleteButton() const { return delete_; }
  QLineEdit* prefixEdit() const { return prefix_; }
  QLineEdit* fromEdit() const { return from_; }
  QLineEdit* toEdit() const { return to_; }
  QLineEdit* gotoEdit() const { return goto_; }
  QCheckBox* liveBox() const { return live_; }

  bool isReadOnly() const { return read_only_; }
  void setReadOnly(bool read_only, const QString& why = QString());
  void setValueFormat(ValueFormat format);
  // Browses the sublevel with this raw prefix ("" for the whole database).
  void browsePrefix(const std::string& prefix);
  // Applies the filter fields.
  void applyFilter();
  // Selects a row (and shows its value).
  void selectRow(int row);
  // The selected entry's raw key, if any.
  std::optional<std::string> selectedKey() const;

 public slots:
  void newEntry();
  void editEntry();
  void deleteEntry();

 signals:
  // A put or del finished (ok, or failed with `message`).
  void writeFinished(bool ok, const QString& message);
  // The value pane shows the selected entry's whole value.
  void valueShown();

 private:
  void fetchTree();
  void onSelectionChanged();
  void onTreeSelection();
  void updateVisibleRows();
  void showValue();
  void updateButtons();
  void write(const std::string& key, const std::optional<std::string>& value, const QString& what);
  QString shownKey(const std::string& raw_key) const;

  many_level::Database& db_;
  Prompter& prompter_;
  KeyListModel* model_;
  SublevelTreeModel* tree_model_;
  QTreeView* tree_;
  QTableView* table_;
  QLineEdit* prefix_;
  QLineEdit* from_;
  QLineEdit* to_;
  QLineEdit* goto_;
  QCheckBox* live_;
  QCheckBox* auto_count_;
  QLabel* status_;
  QLabel* read_only_label_;
  QComboBox* format_;
  QPlainTextEdit* value_;
  QLabel* value_note_;
  QPushButton* new_;
  QPushButton* edit_;
  QPushButton* delete_;
  bool read_only_ = false;
  bool writing_ = false;
  std::optional<std::string> selected_key_;
  std::optional<std::string> selected_value_;  // the whole value, once read
  uint64_t value_request_ = 0;
  // Last member: destroyed first.
  BackgroundLoader worker_{"key-writer"};
};

}  // namespace inspector

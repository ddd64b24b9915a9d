// Edits one entry: the key (as escaped text) and the value in a chosen
// format (utf8, hex or json), refusing what does not parse.
#pragma once

#include <QDialog>

#include "prompter.h"
#include "value_format.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;

namespace inspector {

class KeyEditDialog : public QDialog {
  Q_OBJECT

 public:
  KeyEditDialog(const EntryEdit& initial, bool existing, QWidget* parent = nullptr);

  EntryEdit entry() const { return entry_; }

  void accept() override;

 private:
  void onFormatChanged();

  QLineEdit* key_;
  QComboBox* format_;
  QPlainTextEdit* value_;
  QLabel* error_;
  ValueFormat shown_ = ValueFormat::utf8;
  EntryEdit entry_;
};

}  // namespace inspector

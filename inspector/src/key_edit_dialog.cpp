#include "key_edit_dialog.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QFormLayout>
#include <QFontDatabase>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QVBoxLayout>

#include "bytes_text.hpp"

namespace inspector {

KeyEditDialog::KeyEditDialog(const EntryEdit& initial, bool existing, QWidget* parent)
    : QDialog(parent), entry_(initial) {
  setWindowTitle(existing ? tr("Edit value") : tr("New entry"));
  key_ = new QLineEdit(QString::fromStdString(escape_bytes(initial.key)));
  key_->setReadOnly(existing);
  format_ = new QComboBox;
  for (auto format : {ValueFormat::utf8, ValueFormat::hex, ValueFormat::json}) {
    format_->addItem(formatName(format), static_cast<int>(format));
  }
  value_ = new QPlainTextEdit;
  value_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  value_->setPlainText(editableValue(initial.value, shown_));
  error_ = new QLabel;
  error_->setStyleSheet(QStringLiteral("color: darkred"));

  auto* form = new QFormLayout;
  form->addRow(tr("Key"), key_);
  form->addRow(tr("Value as"), format_);
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
  connect(buttons, &QDialogButtonBox::accepted, this, &KeyEditDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, this, &KeyEditDialog::reject);
  connect(format_, &QComboBox::currentIndexChanged, this, &KeyEditDialog::onFormatChanged);

  auto* layout = new QVBoxLayout(this);
  layout->addLayout(form);
  layout->addWidget(value_, 1);
  layout->addWidget(error_);
  layout->addWidget(buttons);
  resize(520, 380);
}

void KeyEditDialog::onFormatChanged() {
  // Re-show the value in the new format, if what is there parses in the old one.
  const auto next = static_cast<ValueFormat>(format_->currentData().toInt());
  QString error;
  if (auto bytes = parseValue(value_->toPlainText(), shown_, &error)) {
    value_->setPlainText(editableValue(*bytes, next));
    error_->clear();
  } else {
    error_->setText(error);
  }
  shown_ = next;
}

void KeyEditDialog::accept() {
  auto key = unescape_bytes(key_->text().toStdString());
  if (!key || key->empty()) {
    error_->setText(tr("the key must not be empty, and a backslash must start \\xNN or \\\\"));
    return;
  }
  QString error;
  auto value = parseValue(value_->toPlainText(), shown_, &error);
  if (!value) {
    error_->setText(error);
    return;
  }
  entry_ = {std::move(*key), std::move(*value)};
  QDialog::accept();
}

}  // namespace inspector

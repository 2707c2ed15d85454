#include "tools/leadctl/csv_mapping.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/config/yaml_proto.h"
#include "common/events/envelope.h"
#include "google/protobuf/timestamp.pb.h"

namespace leadflow::leadctl {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

std::string Lower(absl::string_view s) { return absl::AsciiStrToLower(s); }

bool IsTimestamp(const FieldDescriptor& f) {
  return f.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
         f.message_type()->full_name() == "google.protobuf.Timestamp";
}

bool IsStringMap(const FieldDescriptor& f) {
  return f.is_map() && f.message_type()->map_key()->cpp_type() == FieldDescriptor::CPPTYPE_STRING &&
         f.message_type()->map_value()->cpp_type() == FieldDescriptor::CPPTYPE_STRING;
}

// A Struct value of a value map as text (YAML may have typed `Yes: true`).
absl::StatusOr<std::string> StructValueText(const google::protobuf::Value& v) {
  switch (v.kind_case()) {
    case google::protobuf::Value::kStringValue:
      return v.string_value();
    case google::protobuf::Value::kBoolValue:
      return std::string(v.bool_value() ? "true" : "false");
    case google::protobuf::Value::kNumberValue: {
      double d = v.number_value();
      if (d == static_cast<double>(static_cast<int64_t>(d))) {
        return absl::StrCat(static_cast<int64_t>(d));
      }
      return absl::StrCat(d);
    }
    case google::protobuf::Value::kNullValue:
      return std::string();
    default:
      return absl::InvalidArgumentError("a replacement must be a string, number or boolean");
  }
}

std::optional<absl::Time> ParseTimestamp(const std::string& cell) {
  absl::Time t;
  std::string err;
  for (const char* format : {absl::RFC3339_full, "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"}) {
    if (absl::ParseTime(format, cell, absl::UTCTimeZone(), &t, &err)) return t;
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<config::v1::CsvMapping> LoadCsvMapping(const std::string& path) {
  config::v1::CsvMapping mapping;
  if (absl::Status s = config::LoadYamlProto(path, &mapping); !s.ok()) return s;
  if (mapping.columns().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": columns: maps no column"));
  }
  return mapping;
}

absl::StatusOr<char> CsvDelimiter(const config::v1::CsvMapping& mapping) {
  if (mapping.delimiter().empty()) return ',';
  if (mapping.delimiter().size() != 1 || mapping.delimiter()[0] == '"' ||
      mapping.delimiter()[0] == '\n' || mapping.delimiter()[0] == '\r') {
    return absl::InvalidArgumentError(
        absl::StrCat("delimiter: must be one character other than a quote or line break, got \"",
                     mapping.delimiter(), "\""));
  }
  return mapping.delimiter()[0];
}

std::optional<bool> ParseBool(absl::string_view cell) {
  std::string v = Lower(absl::StripAsciiWhitespace(cell));
  if (v == "true" || v == "yes" || v == "y" || v == "1" || v == "on" || v == "x") return true;
  if (v == "false" || v == "no" || v == "n" || v == "0" || v == "off" || v.empty()) return false;
  return std::nullopt;
}

absl::StatusOr<CsvMapper::Target> CsvMapper::Resolve(const std::string& path,
                                                     const Descriptor& target) const {
  Target t;
  t.path = path;
  for (const std::string& prefix : caller_prefixes_) {
    if (absl::StartsWith(path, prefix) && path.size() > prefix.size()) {
      t.caller = true;
      return t;
    }
  }
  const Descriptor* message = &target;
  std::vector<std::string> parts = absl::StrSplit(path, '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    const FieldDescriptor* field = message->FindFieldByName(parts[i]);
    if (field == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", path, "\": ", message->name(), " has no field \"", parts[i], "\""));
    }
    t.chain.push_back(field);
    const bool last = i + 1 == parts.size();
    if (field->is_map()) {
      if (!IsStringMap(*field) || i + 2 != parts.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("\"", path, "\": a map field is written one entry per column, as \"",
                         absl::StrJoin(parts.begin(), parts.begin() + i + 1, "."), ".<key>\""));
      }
      t.map_key = parts[i + 1];
      return t;
    }
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !IsTimestamp(*field)) {
      if (field->is_repeated() || last) {
        return absl::InvalidArgumentError(absl::StrCat(
            "\"", path, "\": ", field->full_name(), " is a ",
            field->is_repeated() ? "list of messages" : "message", "; name one of its fields"));
      }
      message = field->message_type();
      continue;
    }
    if (!last) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", path, "\": ", field->full_name(), " has no fields"));
    }
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && field->is_repeated()) {
      return absl::InvalidArgumentError(absl::StrCat("\"", path, "\": a list of timestamps"));
    }
  }
  return t;
}

absl::StatusOr<CsvMapper> CsvMapper::Create(const config::v1::CsvMapping& mapping,
                                            const Descriptor& target,
                                            const std::vector<std::string>& header,
                                            std::vector<std::string> caller_prefixes) {
  CsvMapper mapper;
  mapper.header_ = header;
  mapper.caller_prefixes_ = std::move(caller_prefixes);
  if (!mapping.list_separator().empty()) mapper.list_separator_ = mapping.list_separator();
  if (absl::StatusOr<char> d = CsvDelimiter(mapping); !d.ok()) return d.status();
  for (const std::string& v : mapping.empty_values()) {
    mapper.empty_values_.insert(Lower(absl::StripAsciiWhitespace(v)));
  }
  for (const auto& [path, replacements] : mapping.values()) {
    auto& out = mapper.value_maps_[path];
    for (const auto& [from, to] : replacements.fields()) {
      absl::StatusOr<std::string> text = StructValueText(to);
      if (!text.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("values.", path, ".", from, ": ", text.status().message()));
      }
      out[Lower(absl::StripAsciiWhitespace(from))] = *text;
    }
  }

  // Header positions; a duplicated header name is ambiguous only if the mapping uses it.
  absl::flat_hash_map<std::string, size_t> position;
  absl::flat_hash_set<std::string> duplicated;
  for (size_t i = 0; i < header.size(); ++i) {
    std::string name(absl::StripAsciiWhitespace(header[i]));
    if (!position.emplace(name, i).second) duplicated.insert(name);
  }

  // Sorted so errors and the order of writes do not depend on the map's iteration order.
  std::vector<std::pair<std::string, std::string>> columns(mapping.columns().begin(),
                                                           mapping.columns().end());
  std::sort(columns.begin(), columns.end(), [&](const auto& a, const auto& b) {
    auto pa = position.find(a.first), pb = position.find(b.first);
    size_t ia = pa == position.end() ? SIZE_MAX : pa->second;
    size_t ib = pb == position.end() ? SIZE_MAX : pb->second;
    return ia != ib ? ia < ib : a.first < b.first;
  });
  for (const auto& [column, path] : columns) {
    auto it = position.find(column);
    if (it == position.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("columns: the mapping names column \"", column,
                       "\" but the CSV header has only: ", absl::StrJoin(header, ", ")));
    }
    if (duplicated.contains(column)) {
      return absl::InvalidArgumentError(
          absl::StrCat("columns: column \"", column, "\" appears more than once in the header"));
    }
    absl::StatusOr<Target> t = mapper.Resolve(path, target);
    if (!t.ok())
      return absl::InvalidArgumentError(
          absl::StrCat("columns.", column, ": ", t.status().message()));
    if (auto vm = mapper.value_maps_.find(path); vm != mapper.value_maps_.end()) {
      t->value_map = vm->second;
    }
    mapper.columns_.push_back({it->second, *std::move(t)});
  }
  for (const auto& entry : mapper.value_maps_) {
    const std::string& path = entry.first;
    bool used = std::any_of(mapper.columns_.begin(), mapper.columns_.end(),
                            [&](const ColumnTarget& c) { return c.target.path == path; });
    if (!used) {
      return absl::InvalidArgumentError(
          absl::StrCat("values.", path, ": no column is mapped to \"", path, "\""));
    }
  }
  std::vector<std::pair<std::string, std::string>> defaults(mapping.defaults().begin(),
                                                            mapping.defaults().end());
  std::sort(defaults.begin(), defaults.end());
  for (const auto& [path, value] : defaults) {
    absl::StatusOr<Target> t = mapper.Resolve(path, target);
    if (!t.ok())
      return absl::InvalidArgumentError(
          absl::StrCat("defaults.", path, ": ", t.status().message()));
    // A default must itself convert: checked once here rather than failing every row.
    if (!t->caller) {
      std::unique_ptr<Message> probe(
          google::protobuf::MessageFactory::generated_factory()->GetPrototype(&target)->New());
      if (std::optional<std::string> err = mapper.Write(*t, value, probe.get())) {
        return absl::InvalidArgumentError(absl::StrCat("defaults.", path, ": ", *err));
      }
    }
    mapper.defaults_.emplace_back(*std::move(t), value);
  }
  return mapper;
}

std::optional<std::string> CsvMapper::Write(const Target& t, const std::string& value,
                                            Message* out) const {
  Message* m = out;
  for (size_t i = 0; i + 1 < t.chain.size(); ++i) {
    m = m->GetReflection()->MutableMessage(m, t.chain[i]);
  }
  const FieldDescriptor* f = t.chain.back();
  const Reflection* r = m->GetReflection();
  if (f->is_map()) {
    Message* entry = r->AddMessage(m, f);
    entry->GetReflection()->SetString(entry, f->message_type()->map_key(), t.map_key);
    entry->GetReflection()->SetString(entry, f->message_type()->map_value(), value);
    return std::nullopt;
  }
  std::vector<std::string> items;
  if (f->is_repeated()) {
    for (absl::string_view item : absl::StrSplit(value, list_separator_)) {
      item = absl::StripAsciiWhitespace(item);
      if (!item.empty()) items.emplace_back(item);
    }
  } else {
    items.push_back(value);
  }
  for (const std::string& item : items) {
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        f->is_repeated() ? r->AddString(m, f, item) : r->SetString(m, f, item);
        break;
      case FieldDescriptor::CPPTYPE_INT32:
      case FieldDescriptor::CPPTYPE_INT64:
      case FieldDescriptor::CPPTYPE_UINT32:
      case FieldDescriptor::CPPTYPE_UINT64: {
        int64_t v = 0;
        double d = 0;
        if (!absl::SimpleAtoi(item, &v)) {
          // "250.0" from a spreadsheet is still a whole number.
          if (!absl::SimpleAtod(item, &d) || d != static_cast<double>(static_cast<int64_t>(d))) {
            return absl::StrCat("not a whole number: \"", item, "\"");
          }
          v = static_cast<int64_t>(d);
        }
        const bool is_unsigned = f->cpp_type() == FieldDescriptor::CPPTYPE_UINT32 ||
                                 f->cpp_type() == FieldDescriptor::CPPTYPE_UINT64;
        const bool is32 = f->cpp_type() == FieldDescriptor::CPPTYPE_INT32 ||
                          f->cpp_type() == FieldDescriptor::CPPTYPE_UINT32;
        if ((is_unsigned && v < 0) ||
            (is32 && (v > (is_unsigned ? int64_t{UINT32_MAX} : int64_t{INT32_MAX}) ||
                      v < (is_unsigned ? 0 : int64_t{INT32_MIN})))) {
          return absl::StrCat("out of range: \"", item, "\"");
        }
        switch (f->cpp_type()) {
          case FieldDescriptor::CPPTYPE_INT32:
            f->is_repeated() ? r->AddInt32(m, f, static_cast<int32_t>(v))
                             : r->SetInt32(m, f, static_cast<int32_t>(v));
            break;
          case FieldDescriptor::CPPTYPE_INT64:
            f->is_repeated() ? r->AddInt64(m, f, v) : r->SetInt64(m, f, v);
            break;
          case FieldDescriptor::CPPTYPE_UINT32:
            f->is_repeated() ? r->AddUInt32(m, f, static_cast<uint32_t>(v))
                             : r->SetUInt32(m, f, static_cast<uint32_t>(v));
            break;
          default:
            f->is_repeated() ? r->AddUInt64(m, f, static_cast<uint64_t>(v))
                             : r->SetUInt64(m, f, static_cast<uint64_t>(v));
        }
        break;
      }
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT: {
        double d = 0;
        if (!absl::SimpleAtod(item, &d)) return absl::StrCat("not a number: \"", item, "\"");
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
          f->is_repeated() ? r->AddDouble(m, f, d) : r->SetDouble(m, f, d);
        } else {
          f->is_repeated() ? r->AddFloat(m, f, static_cast<float>(d))
                           : r->SetFloat(m, f, static_cast<float>(d));
        }
        break;
      }
      case FieldDescriptor::CPPTYPE_BOOL: {
        std::optional<bool> b = ParseBool(item);
        if (!b) return absl::StrCat("not yes/no: \"", item, "\"");
        f->is_repeated() ? r->AddBool(m, f, *b) : r->SetBool(m, f, *b);
        break;
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        const google::protobuf::EnumDescriptor* e = f->enum_type();
        // Enum value names carry the type's prefix (CHANNEL_EMAIL); accept the bare name too.
        std::string upper = absl::AsciiStrToUpper(item);
        const google::protobuf::EnumValueDescriptor* v = e->FindValueByName(upper);
        for (int i = 0; v == nullptr && i < e->value_count(); ++i) {
          if (absl::EndsWith(e->value(i)->name(), absl::StrCat("_", upper))) v = e->value(i);
        }
        if (v == nullptr || v->number() == 0) {
          std::vector<std::string> names;
          for (int i = 1; i < e->value_count(); ++i) names.push_back(e->value(i)->name());
          return absl::StrCat("\"", item, "\" is none of ", absl::StrJoin(names, ", "));
        }
        f->is_repeated() ? r->AddEnum(m, f, v) : r->SetEnum(m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE: {
        std::optional<absl::Time> t = ParseTimestamp(item);
        if (!t) {
          return absl::StrCat("not a date or time (RFC 3339 or YYYY-MM-DD): \"", item, "\"");
        }
        r->MutableMessage(m, f)->CopyFrom(events::ToProto(*t));
        break;
      }
    }
  }
  return std::nullopt;
}

CsvMapper::RowResult CsvMapper::Apply(const std::vector<std::string>& row, Message* out) const {
  RowResult result;
  if (row.size() > header_.size()) {
    result.errors.push_back(
        absl::StrCat("the row has ", row.size(), " cells, the header ", header_.size()));
    return result;
  }
  for (const auto& [target, value] : defaults_) {
    if (target.caller) {
      result.caller_fields.emplace_back(target.path, value);
    } else if (std::optional<std::string> err = Write(target, value, out)) {
      result.errors.push_back(absl::StrCat("default ", target.path, ": ", *err));
    }
  }
  absl::flat_hash_set<std::string> lists_started;
  for (const ColumnTarget& c : columns_) {
    if (c.column >= row.size()) continue;
    std::string cell(absl::StripAsciiWhitespace(row[c.column]));
    std::string key = Lower(cell);
    if (cell.empty() || empty_values_.contains(key)) continue;
    if (auto it = c.target.value_map.find(key); it != c.target.value_map.end()) {
      cell = it->second;
      if (cell.empty()) continue;
    }
    if (c.target.caller) {
      result.caller_fields.emplace_back(c.target.path, cell);
      continue;
    }
    // A list default is replaced, not extended, by the first column that gives the list values
    // (further columns mapped to the same list add to it).
    if (c.target.chain.back()->is_repeated() && !c.target.chain.back()->is_map() &&
        lists_started.insert(c.target.path).second) {
      Message* m = out;
      for (size_t i = 0; i + 1 < c.target.chain.size(); ++i) {
        m = m->GetReflection()->MutableMessage(m, c.target.chain[i]);
      }
      m->GetReflection()->ClearField(m, c.target.chain.back());
    }
    if (std::optional<std::string> err = Write(c.target, cell, out)) {
      result.errors.push_back(
          absl::StrCat("column \"", header_[c.column], "\" (", c.target.path, "): ", *err));
    }
  }
  return result;
}

}  // namespace leadflow::leadctl

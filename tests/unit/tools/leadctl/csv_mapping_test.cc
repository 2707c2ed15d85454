#include "tools/leadctl/csv_mapping.h"

#include <fstream>
#include <string>
#include <vector>

#include "common/config/yaml_proto.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "leadflow/events/v1/lead.pb.h"
#include "tools/leadctl/csv_reader.h"

namespace leadflow::leadctl {
namespace {

using events::v1::LeadSubmission;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

config::v1::CsvMapping Mapping(const std::string& yaml) {
  config::v1::CsvMapping mapping;
  absl::Status s = config::ParseYamlProto(yaml, &mapping);
  EXPECT_TRUE(s.ok()) << s;
  return mapping;
}

const std::vector<std::string> kHeader = {"E-mail",    "First",    "Employees", "Country",
                                          "Interests", "Campaign", "CRM Id",    "Opt-in",
                                          "Industry",  "Verified", "Created"};

constexpr char kYaml[] = R"(
columns:
  E-mail: email
  First: first_name
  Employees: company_size
  Country: country
  Interests: interests
  Campaign: attribution.utm_campaign
  CRM Id: custom.crm_id
  Opt-in: consent.email
  Industry: industry
  Verified: email_verified
  Created: submitted_at
values:
  country: {"United Kingdom": "GB", "Great Britain": "GB"}
  industry: {"Select": "", "Retail & Fashion": "retail"}
empty_values: ["N/A", "-"]
defaults:
  source: trade_show
  industry: unknown
list_separator: "|"
)";

CsvMapper MakeMapper(const std::string& yaml = kYaml) {
  absl::StatusOr<CsvMapper> mapper =
      CsvMapper::Create(Mapping(yaml), *LeadSubmission::descriptor(), kHeader, {"consent."});
  EXPECT_TRUE(mapper.ok()) << mapper.status();
  return *std::move(mapper);
}

TEST(CsvMapperTest, MapsEveryKindOfField) {
  CsvMapper mapper = MakeMapper();
  LeadSubmission s;
  CsvMapper::RowResult r =
      mapper.Apply({" jane@acme.com ", "Jane", "250.0", "united kingdom", "shoes| bags |", "spring",
                    "C-17", "yes", "Retail & Fashion", "Y", "2026-03-01"},
                   &s);
  ASSERT_THAT(r.errors, IsEmpty());
  EXPECT_EQ(s.email(), "jane@acme.com");
  EXPECT_EQ(s.first_name(), "Jane");
  EXPECT_EQ(s.company_size(), 250);
  EXPECT_EQ(s.country(), "GB");
  EXPECT_THAT(s.interests(), ElementsAre("shoes", "bags"));
  EXPECT_EQ(s.attribution().utm_campaign(), "spring");
  EXPECT_THAT(s.custom(), UnorderedElementsAre(Pair("crm_id", "C-17")));
  EXPECT_EQ(s.industry(), "retail");
  EXPECT_TRUE(s.email_verified());
  EXPECT_EQ(s.submitted_at().seconds(), 1772323200);  // 2026-03-01T00:00:00Z
  EXPECT_EQ(s.source(), "trade_show");
  EXPECT_THAT(r.caller_fields, ElementsAre(Pair("consent.email", "yes")));
}

TEST(CsvMapperTest, PlaceholdersAndEmptyValuesLeaveDefaultsOrNothing) {
  CsvMapper mapper = MakeMapper();
  LeadSubmission s;
  CsvMapper::RowResult r =
      mapper.Apply({"a@b.com", "N/A", "-", "", "", "", "", "", "select", "", ""}, &s);
  ASSERT_THAT(r.errors, IsEmpty());
  EXPECT_EQ(s.first_name(), "");
  EXPECT_EQ(s.company_size(), 0);
  EXPECT_EQ(s.industry(), "unknown");  // "Select" → empty, so the default stays
  EXPECT_THAT(r.caller_fields, IsEmpty());
}

TEST(CsvMapperTest, MissingTrailingCellsAreEmptyExtraCellsRejectTheRow) {
  CsvMapper mapper = MakeMapper();
  LeadSubmission s;
  EXPECT_THAT(mapper.Apply({"a@b.com"}, &s).errors, IsEmpty());
  std::vector<std::string> too_long(kHeader.size() + 1, "x");
  LeadSubmission t;
  EXPECT_THAT(mapper.Apply(too_long, &t).errors, ElementsAre(HasSubstr("12 cells, the header 11")));
}

TEST(CsvMapperTest, CellsThatDoNotConvertNameColumnFieldAndValue) {
  CsvMapper mapper = MakeMapper();
  LeadSubmission s;
  CsvMapper::RowResult r =
      mapper.Apply({"a@b.com", "", "many", "", "", "", "", "", "", "perhaps", "yesterday"}, &s);
  EXPECT_THAT(r.errors,
              ElementsAre(HasSubstr("column \"Employees\" (company_size): not a whole number: "
                                    "\"many\""),
                          HasSubstr("column \"Verified\" (email_verified): not yes/no"),
                          HasSubstr("column \"Created\" (submitted_at): not a date")));
  LeadSubmission big;
  EXPECT_THAT(mapper.Apply({"a@b.com", "", "99999999999"}, &big).errors,
              ElementsAre(HasSubstr("out of range")));
}

TEST(CsvMapperTest, RejectsMappingsThatCannotWork) {
  auto create = [](const std::string& yaml) {
    return CsvMapper::Create(Mapping(yaml), *LeadSubmission::descriptor(), kHeader, {"consent."})
        .status();
  };
  EXPECT_THAT(std::string(create("columns: {Phone: phone}").message()),
              HasSubstr("names column \"Phone\" but the CSV header has only: E-mail"));
  EXPECT_THAT(std::string(create("columns: {E-mail: mail}").message()),
              HasSubstr("LeadSubmission has no field \"mail\""));
  EXPECT_THAT(std::string(create("columns: {E-mail: attribution}").message()),
              HasSubstr("name one of its fields"));
  EXPECT_THAT(std::string(create("columns: {E-mail: custom}").message()),
              HasSubstr("custom.<key>"));
  EXPECT_THAT(std::string(create("columns: {E-mail: email}\nvalues: {phone: {a: b}}").message()),
              HasSubstr("no column is mapped to \"phone\""));
  EXPECT_THAT(
      std::string(create("columns: {E-mail: email}\ndefaults: {company_size: lots}").message()),
      HasSubstr("defaults.company_size: not a whole number"));
  EXPECT_THAT(std::string(create("columns: {E-mail: email}\ndelimiter: ';;'").message()),
              HasSubstr("delimiter"));
}

TEST(CsvMapperTest, EnumsByBareOrFullName) {
  const std::vector<std::string> header = {"channel"};
  absl::StatusOr<CsvMapper> mapper = CsvMapper::Create(Mapping("columns: {channel: channel}"),
                                                       *events::v1::Consent::descriptor(), header);
  ASSERT_TRUE(mapper.ok()) << mapper.status();
  events::v1::Consent a, b, c;
  EXPECT_THAT(mapper->Apply({"sms"}, &a).errors, IsEmpty());
  EXPECT_EQ(a.channel(), events::v1::CHANNEL_SMS);
  EXPECT_THAT(mapper->Apply({"CHANNEL_EMAIL"}, &b).errors, IsEmpty());
  EXPECT_EQ(b.channel(), events::v1::CHANNEL_EMAIL);
  EXPECT_THAT(mapper->Apply({"pigeon"}, &c).errors,
              ElementsAre(HasSubstr("\"pigeon\" is none of CHANNEL_EMAIL")));
}

}  // namespace
}  // namespace leadflow::leadctl

namespace leadflow::leadctl {
namespace {

// docs/examples: the documented mapping fits the documented file, row by row as docs/IMPORT.md
// says.
TEST(CsvMapperTest, DocumentedExampleMapsTheExampleFile) {
  const std::string dir = std::string(LEADFLOW_SOURCE_DIR) + "/docs/examples/";
  absl::StatusOr<config::v1::CsvMapping> mapping = LoadCsvMapping(dir + "import-mapping.yaml");
  ASSERT_TRUE(mapping.ok()) << mapping.status();
  std::ifstream in(dir + "leads.csv");
  CsvReader reader(in, ',');
  std::vector<std::string> header, row;
  ASSERT_TRUE(*reader.Next(&header));
  absl::StatusOr<CsvMapper> mapper =
      CsvMapper::Create(*mapping, *events::v1::LeadSubmission::descriptor(), header, {"consent."});
  ASSERT_TRUE(mapper.ok()) << mapper.status();

  std::vector<events::v1::LeadSubmission> rows;
  std::vector<std::vector<std::string>> errors;
  while (*reader.Next(&row)) {
    events::v1::LeadSubmission s;
    errors.push_back(mapper->Apply(row, &s).errors);
    rows.push_back(s);
  }
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[0].request_id(), "T-1001");
  EXPECT_EQ(rows[0].industry(), "retail");
  EXPECT_EQ(rows[0].country(), "GB");
  EXPECT_THAT(rows[0].interests(), ElementsAre("shoes", "bags"));
  EXPECT_EQ(rows[0].attribution().campaign(), "trade-show-2026");
  EXPECT_EQ(rows[1].attribution().campaign(), "spring-webinar");
  EXPECT_EQ(rows[1].source(), "event");
  EXPECT_EQ(rows[2].industry(), "");
  EXPECT_EQ(rows[2].company_size(), 0);
  EXPECT_TRUE(rows[2].do_not_contact());
  EXPECT_THAT(errors[3], IsEmpty());  // rejected by capture (e-mail), not by the mapping
  EXPECT_THAT(errors[4], ElementsAre(HasSubstr("column \"Employees\"")));
}

}  // namespace
}  // namespace leadflow::leadctl

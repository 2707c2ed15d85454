#include "tools/leadctl/csv_reader.h"

#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leadflow::leadctl {
namespace {

using ::testing::ElementsAre;

std::vector<std::vector<std::string>> ReadAll(const std::string& text, char delimiter = ',') {
  std::istringstream in(text);
  CsvReader reader(in, delimiter, text.size());
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  while (true) {
    absl::StatusOr<bool> more = reader.Next(&row);
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) break;
    rows.push_back(row);
  }
  EXPECT_EQ(reader.bytes_read(), text.size());
  return rows;
}

TEST(CsvReaderTest, QuotedFieldsHoldDelimitersQuotesAndLineBreaks) {
  auto rows = ReadAll(
      "name,notes\r\n"
      "\"Doe, Jane\",\"said \"\"hi\"\"\nthen left\"\r\n"
      "Bob,plain\n");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_THAT(rows[0], ElementsAre("name", "notes"));
  EXPECT_THAT(rows[1], ElementsAre("Doe, Jane", "said \"hi\"\nthen left"));
  EXPECT_THAT(rows[2], ElementsAre("Bob", "plain"));
}

TEST(CsvReaderTest, SkipsByteOrderMarkAndBlankLinesAndKeepsEmptyCells) {
  auto rows = ReadAll(
      "\xEF\xBB\xBF"
      "email,phone\n\na@b.com,\n,+44 20\n");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_THAT(rows[0], ElementsAre("email", "phone"));
  EXPECT_THAT(rows[1], ElementsAre("a@b.com", ""));
  EXPECT_THAT(rows[2], ElementsAre("", "+44 20"));
}

TEST(CsvReaderTest, LastRowWithoutLineBreakAndOtherDelimiter) {
  auto rows = ReadAll("a;b\n1;2", ';');
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_THAT(rows[1], ElementsAre("1", "2"));
}

TEST(CsvReaderTest, RowsSpanningReadChunksAreWhole) {
  std::string text = "id,payload\n";
  const std::string big(100 * 1024, 'x');  // larger than one read chunk
  for (int i = 0; i < 3; ++i) text += std::to_string(i) + ",\"" + big + "\"\n";
  auto rows = ReadAll(text);
  ASSERT_EQ(rows.size(), 4u);
  for (int i = 1; i < 4; ++i) {
    EXPECT_EQ(rows[i][0], std::to_string(i - 1));
    EXPECT_EQ(rows[i][1], big);
  }
}

TEST(CsvReaderTest, UnterminatedQuoteAtEndIsAnErrorNamingTheRow) {
  std::istringstream in("a,b\n1,2\n3,\"never closed\n");
  CsvReader reader(in, ',');
  std::vector<std::string> row;
  ASSERT_TRUE(*reader.Next(&row));
  ASSERT_TRUE(*reader.Next(&row));
  absl::StatusOr<bool> next = reader.Next(&row);
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(next.status().message()), ::testing::HasSubstr("row 3"));
}

}  // namespace
}  // namespace leadflow::leadctl

namespace leadflow::leadctl {
namespace {

TEST(CsvReaderTest, StrayQuotesInUnquotedFieldsAreText) {
  auto rows = ReadAll("company,size\nAcme \"Best\" Ltd,5'10\"\n");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1][0], "Acme \"Best\" Ltd");
  EXPECT_EQ(rows[1][1], "5'10\"");
}

}  // namespace
}  // namespace leadflow::leadctl

// The display names file (billing/key_names.h): RFC 4180 records under the header
// table,key,name; every bad record is refused with the file and the line it starts on, and
// every field and the file itself are bounded.
#include "billing/key_names.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/status_matchers.h"

namespace stickmeter::billing {
namespace {

std::string Error(std::string_view text) {
  auto names = KeyNames::Parse(text, "names.csv");
  EXPECT_FALSE(names.ok()) << text;
  return names.ok() ? "" : names.status().message();
}

// The names of `table` from Range(prefix, after), as "key=name;".
std::string Listed(const KeyNames& names, std::string_view table, std::string_view prefix = "",
                   std::string_view after = "") {
  std::string out;
  auto [it, end] = names.Range(table, prefix, after);
  for (; it != end && std::string_view(it->key).starts_with(prefix); ++it) {
    out += it->key + "=" + it->name + ";";
  }
  return out;
}

TEST(KeyNamesTest, ParsesQuotedFieldsAndBothLineEndings) {
  auto names = KeyNames::Parse(
      "table,key,name\r\n"
      "/quota,acme.example,Acme Corp\r\n"
      "/quota,\"a,b \"\"c\"\"\",\"Quoted, Inc.\"\n"
      "\n"
      "/other,acme.example,Acme (other table)\n"
      "/quota,beta.example,=Beta",  // no final newline; a formula-like name is kept as is
      "names.csv");
  ASSERT_OK(names);
  const KeyNames& n = **names;
  EXPECT_EQ(4u, n.size());
  ASSERT_NE(nullptr, n.Find("/quota", "acme.example"));
  EXPECT_EQ("Acme Corp", *n.Find("/quota", "acme.example"));
  EXPECT_EQ("Quoted, Inc.", *n.Find("/quota", "a,b \"c\""));
  EXPECT_EQ("Acme (other table)", *n.Find("/other", "acme.example"));
  EXPECT_EQ(nullptr, n.Find("/quota", "nobody"));
  EXPECT_EQ(nullptr, n.Find("/none", "acme.example"));
  EXPECT_EQ("a,b \"c\"=Quoted, Inc.;acme.example=Acme Corp;beta.example==Beta;",
            Listed(n, "/quota"));
  EXPECT_EQ("acme.example=Acme Corp;", Listed(n, "/quota", "ac"));
  EXPECT_EQ("beta.example==Beta;", Listed(n, "/quota", "", "acme.example"));
  EXPECT_EQ("", Listed(n, "/quota", "ac", "acme.example"));
  EXPECT_EQ("", Listed(n, "/none"));

  auto header_only = KeyNames::Parse("table,key,name\n", "names.csv");
  ASSERT_OK(header_only);
  EXPECT_EQ(0u, (*header_only)->size());
}

TEST(KeyNamesTest, BadRecordsNameTheFileAndLine) {
  EXPECT_EQ("names.csv:1: the header must be table,key,name", Error(""));
  EXPECT_EQ("names.csv:1: the header must be table,key,name", Error("key,name\n"));
  EXPECT_EQ("names.csv:3: expected 3 fields (table,key,name), got 2",
            Error("table,key,name\n/q,a,A\n/q,b\n"));
  EXPECT_EQ("names.csv:2: expected 3 fields (table,key,name), got 4",
            Error("table,key,name\n/q,a,A,extra\n"));
  EXPECT_EQ("names.csv:2: the table must be 1 to 1024 bytes", Error("table,key,name\n,a,A\n"));
  EXPECT_EQ("names.csv:2: the key must be 1 to 4096 bytes", Error("table,key,name\n/q,,A\n"));
  EXPECT_EQ("names.csv:2: the name must be 1 to 1024 bytes", Error("table,key,name\n/q,a,\n"));
  EXPECT_EQ("names.csv:2: the name holds a control character",
            Error("table,key,name\n/q,a,\"two\nlines\"\n"));
  // A quoted field spanning lines: the error names the line the record starts on.
  EXPECT_EQ("names.csv:2: expected 3 fields (table,key,name), got 2",
            Error("table,key,name\n/q,\"multi\nline key\"\n"));
  EXPECT_EQ("names.csv:2: a quoted field is not closed", Error("table,key,name\n/q,a,\"Acme\n"));
  EXPECT_EQ("names.csv:2: a quote inside an unquoted field", Error("table,key,name\n/q,a\"b,A\n"));
  EXPECT_EQ("names.csv:2: text after a closing quote", Error("table,key,name\n/q,\"a\"b,A\n"));
  EXPECT_EQ("names.csv:2: a CR without LF", Error("table,key,name\n/q,a,A\rx\n"));
  EXPECT_EQ("names.csv:4: key \"a\" of table \"/q\" is named already on line 2",
            Error("table,key,name\n/q,a,A\n/q,b,B\n/q,a,Again\n"));
}

TEST(KeyNamesTest, FieldsAndFilesAreBounded) {
  const std::string header = "table,key,name\n";
  EXPECT_OK(KeyNames::Parse(
      header + "/q," + std::string(4096, 'k') + "," + std::string(1024, 'n') + "\n", "names.csv"));
  EXPECT_EQ("names.csv:2: the name must be 1 to 1024 bytes",
            Error(header + "/q,k," + std::string(1025, 'n') + "\n"));
  EXPECT_EQ("names.csv:2: the table must be 1 to 1024 bytes",
            Error(header + std::string(1025, 't') + ",k,n\n"));
  // A runaway field is refused as soon as it passes the largest field allowed.
  EXPECT_EQ("names.csv:2: a field longer than 4096 bytes",
            Error(header + "/q,\"" + std::string(10000, 'k') + "\",n\n"));

  char tmpl[] = "/tmp/key-names-test-XXXXXX";
  const std::filesystem::path dir = ::mkdtemp(tmpl);
  const std::string path = (dir / "names.csv").string();
  {
    std::ofstream f(path, std::ios::binary);
    f << header << "/q,a,Acme\n/q,b,Beta\n";
  }
  auto loaded = KeyNames::Load(path);
  ASSERT_OK(loaded);
  EXPECT_EQ("Beta", *(*loaded)->Find("/q", "b"));
  // One byte over 64 MiB, without writing it: the size is checked before the file is read.
  std::filesystem::resize_file(path, kMaxKeyNamesFileBytes + 1);
  auto big = KeyNames::Load(path);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(path + ": larger than 64 MiB", big.status().message());
  auto missing = KeyNames::Load((dir / "missing.csv").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ((dir / "missing.csv").string() + ": cannot read", missing.status().message());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace stickmeter::billing

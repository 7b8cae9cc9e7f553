#include "common/status.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include "tests/support/status_matchers.h"

namespace stickmeter {
namespace {

TEST(StatusTest, OkAndErrorsRenderTheirCode) {
  EXPECT_TRUE(Status::Ok().ok());
  EXPECT_EQ("OK", Status::Ok().ToString());
  Status s = Status::InvalidArgument("from: not a time");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_EQ("invalid argument: from: not a time", s.ToString());
  EXPECT_EQ("corruption: store: bad key",
            Status::Corruption("bad key").WithContext("store").ToString());
}

TEST(ResultTest, HoldsValueOrStatus) {
  Result<int> good(7);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(7, *good);
  Result<int> bad(Status::NotFound("table /x"));
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsNotFound());
}

// The tests' ASSERT_OK/EXPECT_OK name the expression and print the status it returned.
TEST(StatusMatchersTest, AFailureNamesTheExpressionAndTheStatus) {
  EXPECT_OK(Status::Ok());
  EXPECT_OK(Result<int>(7));
  EXPECT_NONFATAL_FAILURE(EXPECT_OK(Status::NotFound("no such key")), "no such key");
  EXPECT_NONFATAL_FAILURE(EXPECT_OK(Result<int>(Status::Corruption("bad row"))),
                          "Result<int>(Status::Corruption(\"bad row\")): ");
  EXPECT_FATAL_FAILURE(ASSERT_OK(Status::NotFound("gone")), "gone");
}

}  // namespace
}  // namespace stickmeter

// ASSERT_OK / EXPECT_OK for the tests: a failing Status or Result<T> fails the test with the
// expression and the status it returned ("store->Close(): IoError: ..."), instead of a bare
// "Value of: s.ok()".
//
// Header-only, for any test that links GoogleTest; no state.
#pragma once

#include <gtest/gtest.h>

#include "common/status.h"

namespace stickmeter::testing_support {

inline ::testing::AssertionResult IsOk(const char* expression, const Status& status) {
  if (status.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << expression << ": " << status.ToString();
}

template <typename T>
::testing::AssertionResult IsOk(const char* expression, const Result<T>& result) {
  return IsOk(expression, result.status());
}

}  // namespace stickmeter::testing_support

#define ASSERT_OK(expression) ASSERT_PRED_FORMAT1(::stickmeter::testing_support::IsOk, expression)
#define EXPECT_OK(expression) EXPECT_PRED_FORMAT1(::stickmeter::testing_support::IsOk, expression)

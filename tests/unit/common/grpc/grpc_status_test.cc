#include "common/grpc/status.h"

#include <string>

#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace leadflow::grpc_util {
namespace {

google::rpc::BadRequest TwoViolations() {
  google::rpc::BadRequest violations;
  auto* email = violations.add_field_violations();
  email->set_field("lead.email");
  email->set_description("not an e-mail address");
  auto* phone = violations.add_field_violations();
  phone->set_field("lead.phone");
  phone->set_description("too short for +44");
  return violations;
}

TEST(GrpcStatusTest, OkStaysOk) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

class GrpcStatusCodeTest : public ::testing::TestWithParam<absl::StatusCode> {};

TEST_P(GrpcStatusCodeTest, CodeAndMessageSurviveTheRoundTrip) {
  const absl::Status original(GetParam(), "lead lead-1: something happened");
  const grpc::Status wire = ToGrpcStatus(original);
  EXPECT_EQ(static_cast<int>(wire.error_code()), static_cast<int>(GetParam()));
  EXPECT_EQ(wire.error_message(), "lead lead-1: something happened");
  EXPECT_TRUE(wire.error_details().empty());
  EXPECT_EQ(FromGrpcStatus(wire), original);
}

INSTANTIATE_TEST_SUITE_P(
    Codes, GrpcStatusCodeTest,
    ::testing::Values(absl::StatusCode::kInvalidArgument, absl::StatusCode::kNotFound,
                      absl::StatusCode::kAlreadyExists, absl::StatusCode::kUnavailable,
                      absl::StatusCode::kDeadlineExceeded, absl::StatusCode::kPermissionDenied,
                      absl::StatusCode::kUnauthenticated, absl::StatusCode::kFailedPrecondition,
                      absl::StatusCode::kInternal));

TEST(GrpcStatusTest, FieldViolationsSurviveAbslToGrpcToAbsl) {
  const absl::Status original = InvalidArgumentWithViolations("invalid lead", TwoViolations());

  const grpc::Status wire = ToGrpcStatus(original);
  EXPECT_EQ(wire.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(wire.error_message(), std::string(original.message()));
  // What a client in any language reads from grpc-status-details-bin.
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(wire.error_details()));
  EXPECT_EQ(details.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  ASSERT_EQ(details.details_size(), 1);
  EXPECT_EQ(details.details(0).type_url(), "type.googleapis.com/google.rpc.BadRequest");
  google::rpc::BadRequest on_wire;
  ASSERT_TRUE(details.details(0).UnpackTo(&on_wire));
  EXPECT_EQ(on_wire.field_violations_size(), 2);

  const absl::Status back = FromGrpcStatus(wire);
  EXPECT_EQ(back.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(back.message(), original.message());
  const google::rpc::BadRequest violations = ViolationsOf(back);
  ASSERT_EQ(violations.field_violations_size(), 2);
  EXPECT_EQ(violations.field_violations(0).field(), "lead.email");
  EXPECT_EQ(violations.field_violations(0).description(), "not an e-mail address");
  EXPECT_EQ(violations.field_violations(1).field(), "lead.phone");
  EXPECT_EQ(violations.field_violations(1).description(), "too short for +44");
  EXPECT_EQ(back, original);
}

TEST(GrpcStatusTest, MessageNamesEveryViolation) {
  const absl::Status s = InvalidArgumentWithViolations("invalid lead", TwoViolations());
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("invalid lead"));
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("lead.email: not an e-mail address"));
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("lead.phone: too short for +44"));
}

TEST(GrpcStatusTest, StatusWithoutViolationsHasNone) {
  EXPECT_EQ(ViolationsOf(absl::InvalidArgumentError("bad")).field_violations_size(), 0);
  EXPECT_EQ(ViolationsOf(FromGrpcStatus(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad",
                                                     "not a google.rpc.Status")))
                .field_violations_size(),
            0);
}

}  // namespace
}  // namespace leadflow::grpc_util

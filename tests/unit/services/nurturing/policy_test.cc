// The nurture delivery policy (quiet hours, frequency cap, cooldown) from the track file.
#include "common/config/yaml_proto.h"
#include "gtest/gtest.h"
#include "leadflow/config/v1/nurture_tracks.pb.h"
#include "services/nurturing/enrollment.h"
#include "services/nurturing/scheduler.h"

namespace leadflow::nurturing {
namespace {

TEST(NurturingPolicyTest, TheDefaultTrackFileSetsQuietHoursCapAndCooldown) {
  config::v1::NurtureTracks file;
  ASSERT_TRUE(
      config::LoadYamlProto(std::string(LEADFLOW_SOURCE_DIR) + "/config/nurture.yaml", &file).ok());
  absl::StatusOr<NurturingPolicy> policy = PolicyFromConfig(file.delivery());
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->delivery.quiet_start_minute, 21 * 60);
  EXPECT_EQ(policy->delivery.quiet_end_minute, 8 * 60);
  EXPECT_EQ(policy->delivery.max_touches, 3);
  EXPECT_EQ(policy->delivery.cap_window, absl::Hours(7 * 24));
  EXPECT_EQ(policy->reenroll_cooldown, absl::Hours(168));
}

TEST(NurturingPolicyTest, TheDefaultTrackFileSetsTheDrainRate) {
  config::v1::NurtureTracks file;
  ASSERT_TRUE(
      config::LoadYamlProto(std::string(LEADFLOW_SOURCE_DIR) + "/config/nurture.yaml", &file).ok());
  absl::StatusOr<SchedulerOptions> options = SchedulerOptionsFrom(file.scheduling());
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->interval, absl::Milliseconds(150));
  EXPECT_EQ(options->max_claims_per_pass, 3000);  // 20000/s * 0.15 s
  EXPECT_EQ(options->lease, absl::Seconds(15));   // a killed scheduler's claims return soon
  EXPECT_EQ(options->workers, 4);
}

TEST(NurturingPolicyTest, ValuesFromTheFileReplaceTheDefaults) {
  config::v1::Delivery delivery;
  ASSERT_TRUE(config::ParseYamlProto(R"yaml(
quiet_hours_start: "22:30"
quiet_hours_end: "07:15"
max_touches: 2
cap_window_days: 3
default_time_zone: Europe/London
reenroll_cooldown_hours: 24
)yaml",
                                     &delivery)
                  .ok());
  absl::StatusOr<NurturingPolicy> policy = PolicyFromConfig(delivery);
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->delivery.quiet_start_minute, 22 * 60 + 30);
  EXPECT_EQ(policy->delivery.quiet_end_minute, 7 * 60 + 15);
  EXPECT_EQ(policy->delivery.max_touches, 2);
  EXPECT_EQ(policy->delivery.cap_window, absl::Hours(72));
  EXPECT_EQ(policy->delivery.default_time_zone, "Europe/London");
  EXPECT_EQ(policy->reenroll_cooldown, absl::Hours(24));
}

TEST(NurturingPolicyTest, ANegativeCapDisablesIt) {
  config::v1::Delivery delivery;
  delivery.set_max_touches(-1);
  absl::StatusOr<NurturingPolicy> policy = PolicyFromConfig(delivery);
  ASSERT_TRUE(policy.ok());
  EXPECT_EQ(policy->delivery.max_touches, 0);
}

TEST(NurturingPolicyTest, MalformedValuesAreRejectedNamingTheField) {
  struct Case {
    const char* yaml;
    const char* field;
  };
  for (const Case& c : {Case{"quiet_hours_start: \"25:00\"", "quiet_hours_start"},
                        Case{"quiet_hours_end: \"8am\"", "quiet_hours_end"},
                        Case{"default_time_zone: Mars/Olympus", "default_time_zone"},
                        Case{"cap_window_days: -2", "cap_window_days"}}) {
    config::v1::Delivery delivery;
    ASSERT_TRUE(config::ParseYamlProto(c.yaml, &delivery).ok()) << c.yaml;
    absl::StatusOr<NurturingPolicy> policy = PolicyFromConfig(delivery);
    ASSERT_TRUE(absl::IsInvalidArgument(policy.status())) << c.yaml;
    EXPECT_NE(policy.status().message().find(c.field), absl::string_view::npos) << policy.status();
  }
}

}  // namespace
}  // namespace leadflow::nurturing

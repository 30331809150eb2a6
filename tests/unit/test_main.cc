// GoogleTest entry point: registers Arrow's compute kernels once, as the sluice binary does.
#include <arrow/compute/initialize.h>
#include <gtest/gtest.h>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (!arrow::compute::Initialize().ok()) return 2;
  return RUN_ALL_TESTS();
}

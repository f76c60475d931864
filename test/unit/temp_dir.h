// A directory under /tmp for one test, removed with everything in it when
// the test ends. The one copy for every unit test (three had their own).
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <string_view>

namespace ferry::test {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/ferry-test-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) std::abort();  // /tmp unusable: nothing can be tested
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::filesystem::path operator/(std::string_view name) const { return std::filesystem::path(path) / name; }
};

}  // namespace ferry::test

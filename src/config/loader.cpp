#include "ulmfit/config/loader.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>

#include "ulmfit/util/error.h"
#include "ulmfit/util/files.h"

namespace ulmfit::config {
namespace {

namespace fs = std::filesystem;

/// What the reader needs besides the node it is looking at.
struct LoadContext {
  std::string source;    // file name for messages
  std::string base_dir;  // relative paths are resolved against this
  std::set<std::string> override_paths;
  std::map<std::string, std::string>* locations = nullptr;

  bool from_override(const std::string& path) const {
    for (const auto& o : override_paths) {
      if (o == path || o.rfind(path + ".", 0) == 0) return true;
    }
    return false;
  }

  std::string location(const YAML::Node& node, const std::string& path) const {
    if (from_override(path)) return "--set";
    const YAML::Mark m = node.Mark();
    if (m.line < 0) return source;
    return source + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
  }

  [[noreturn]] void fail(const YAML::Node& node, const std::string& path,
                         const std::string& problem) const {
    const std::string where = location(node, path);
    throw ConfigError(where + (where == "--set" ? " " : ": ") + path + ": " + problem);
  }
};

std::string describe_node(const YAML::Node& n) {
  if (n.IsScalar()) return "'" + n.Scalar() + "'";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "nothing";
}

template <class T>
bool convert_number(const YAML::Node& n, T& out) {
  if (!n.IsScalar()) return false;
  try {
    out = n.as<T>();
    return true;
  } catch (const YAML::BadConversion&) {
    return false;
  }
}

bool convert(const YAML::Node& n, int& out, std::string& expected) {
  expected = "an integer";
  return convert_number(n, out);
}
bool convert(const YAML::Node& n, std::int64_t& out, std::string& expected) {
  expected = "an integer";
  return convert_number(n, out);
}
bool convert(const YAML::Node& n, double& out, std::string& expected) {
  expected = "a number";
  return convert_number(n, out) && std::isfinite(out);
}
bool convert(const YAML::Node& n, bool& out, std::string& expected) {
  expected = "true or false";
  return convert_number(n, out);
}
bool convert(const YAML::Node& n, std::string& out, std::string& expected) {
  expected = "a string";
  if (n.IsNull()) {
    out.clear();
    return true;
  }
  if (!n.IsScalar()) return false;
  out = expand_env(n.Scalar());
  return true;
}
bool convert(const YAML::Node& n, std::vector<std::string>& out, std::string& expected) {
  expected = "a string or a list of strings";
  out.clear();
  if (n.IsNull()) return true;
  if (n.IsScalar()) {
    out.push_back(expand_env(n.Scalar()));
    return true;
  }
  if (!n.IsSequence()) return false;
  for (const auto& item : n) {
    if (!item.IsScalar()) return false;
    out.push_back(expand_env(item.Scalar()));
  }
  return true;
}
bool convert(const YAML::Node& n, std::vector<int>& out, std::string& expected) {
  expected = "a list of integers";
  out.clear();
  if (n.IsNull()) return true;
  if (!n.IsSequence()) return false;
  for (const auto& item : n) {
    int x = 0;
    if (!convert_number(item, x)) return false;
    out.push_back(x);
  }
  return true;
}
bool convert(const YAML::Node& n, std::vector<double>& out, std::string& expected) {
  expected = "a list of numbers";
  out.clear();
  if (n.IsNull()) return true;
  if (!n.IsSequence()) return false;
  for (const auto& item : n) {
    double x = 0;
    if (!convert_number(item, x)) return false;
    out.push_back(x);
  }
  return true;
}

std::string resolve_path(const std::string& p, const std::string& base_dir) {
  if (p.empty() || base_dir.empty()) return p;
  const fs::path path(p);
  if (path.is_absolute()) return p;
  return (fs::path(base_dir) / path).lexically_normal().string();
}

/// Fills a struct from a YAML mapping, recording each key it knows so the rest
/// can be rejected by name.
class YamlReader {
 public:
  YamlReader(const YAML::Node& node, std::string prefix, const LoadContext& ctx)
      : node_(node), prefix_(std::move(prefix)), ctx_(ctx) {}

  template <class T>
  void value(const char* key, T& field, const char* /*comment*/, const Check<T>& check = {}) {
    const YAML::Node child = lookup(key);
    if (!child) return;
    const std::string path = prefix_ + key;
    std::string expected;
    if (!convert(child, field, expected)) {
      ctx_.fail(child, path, "expected " + expected + ", got " + describe_node(child));
    }
    if (check) {
      const std::string problem = check(field);
      if (!problem.empty()) ctx_.fail(child, path, problem);
    }
    record(child, path);
  }

  void path(const char* key, std::string& field, const char* comment) {
    value(key, field, comment);
    field = resolve_path(field, ctx_.base_dir);
  }

  void path(const char* key, std::vector<std::string>& field, const char* comment) {
    value(key, field, comment);
    for (auto& p : field) p = resolve_path(p, ctx_.base_dir);
  }

  template <class S>
  void section(const char* key, S& sub) {
    const YAML::Node child = lookup(key);
    if (!child) return;
    const std::string path = prefix_ + key;
    if (child.IsNull()) return;
    if (!child.IsMap()) ctx_.fail(child, path, "expected a mapping, got " + describe_node(child));
    YamlReader reader(child, path + ".", ctx_);
    sub.visit(reader);
    reader.reject_unknown();
  }

  void reject_unknown() const {
    for (const auto& entry : node_) {
      // YAML allows a list or a mapping as a key ({[a]: 1}); a config never does.
      if (!entry.first.IsScalar()) {
        ctx_.fail(entry.first, prefix_ + "<key>", "keys must be plain names, got " + describe_node(entry.first));
      }
      const std::string key = entry.first.Scalar();
      if (!known_.count(key)) ctx_.fail(entry.first, prefix_ + key, "unknown key");
    }
  }

 private:
  YAML::Node lookup(const char* key) {
    known_.insert(key);
    return node_[key];
  }

  void record(const YAML::Node& node, const std::string& path) {
    if (ctx_.locations != nullptr) (*ctx_.locations)[path] = ctx_.location(node, path);
  }

  const YAML::Node node_;
  std::string prefix_;
  const LoadContext& ctx_;
  std::set<std::string> known_;
};

std::string format_double(double x) {
  char buf[40];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  std::string s(buf);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // keep it a float
  return s;
}

std::string format_scalar(const std::string& s) {
  YAML::Emitter e;
  e << YAML::DoubleQuoted << s;
  return e.c_str();
}
std::string format_scalar(int x) { return std::to_string(x); }
std::string format_scalar(std::int64_t x) { return std::to_string(x); }
std::string format_scalar(double x) { return format_double(x); }
std::string format_scalar(bool x) { return x ? "true" : "false"; }
std::string format_scalar(const std::vector<std::string>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + format_scalar(v[i]);
  return out + "]";
}
std::string format_scalar(const std::vector<int>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
  return out + "]";
}
std::string format_scalar(const std::vector<double>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + format_double(v[i]);
  return out + "]";
}

/// Writes a struct as commented YAML.
class YamlWriter {
 public:
  YamlWriter(std::ostringstream& out, int indent) : out_(out), indent_(indent) {}

  template <class T>
  void value(const char* key, const T& field, const char* comment, const Check<T>& = {}) {
    out_ << std::string(static_cast<std::size_t>(indent_), ' ') << key << ": "
         << format_scalar(field) << "  # " << comment << "\n";
  }
  template <class T>
  void path(const char* key, const T& field, const char* comment) {
    value(key, field, comment);
  }
  template <class S>
  void section(const char* key, S& sub) {
    out_ << std::string(static_cast<std::size_t>(indent_), ' ') << key << ":\n";
    YamlWriter child(out_, indent_ + 2);
    sub.visit(child);
  }

 private:
  std::ostringstream& out_;
  int indent_;
};

/// Writes "key.path = value  # comment" lines.
class KeyLister {
 public:
  KeyLister(std::ostringstream& out, std::string prefix) : out_(out), prefix_(std::move(prefix)) {}

  template <class T>
  void value(const char* key, const T& field, const char* comment, const Check<T>& = {}) {
    out_ << "  " << prefix_ << key << " = " << format_scalar(field) << "  # " << comment << "\n";
  }
  template <class T>
  void path(const char* key, const T& field, const char* comment) {
    value(key, field, comment);
  }
  template <class S>
  void section(const char* key, S& sub) {
    KeyLister child(out_, prefix_ + key + ".");
    sub.visit(child);
  }

 private:
  std::ostringstream& out_;
  std::string prefix_;
};

void apply_override(YAML::Node& root, const std::string& assignment, LoadContext& ctx) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw ConfigError("--set " + assignment + ": expected key.path=value");
  }
  const std::string path = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  YAML::Node value;
  try {
    value = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError("--set " + path + ": cannot parse value '" + text + "': " + e.msg);
  }
  std::vector<std::string> keys;
  std::stringstream parts(path);
  for (std::string k; std::getline(parts, k, '.');) {
    if (k.empty()) throw ConfigError("--set " + path + ": empty key in key path");
    keys.push_back(k);
  }
  YAML::Node cur;
  cur.reset(root);
  for (std::size_t i = 0; i + 1 < keys.size(); ++i) {
    if (!cur[keys[i]].IsMap()) cur[keys[i]] = YAML::Node(YAML::NodeType::Map);
    YAML::Node next = cur[keys[i]];
    cur.reset(next);
  }
  cur[keys.back()] = value;
  ctx.override_paths.insert(path);
}

Config load_from_node(YAML::Node root, LoadContext& ctx, const std::vector<std::string>& overrides) {
  if (!root || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) throw ConfigError(ctx.source + ": the top level must be a mapping of keys");
  for (const auto& o : overrides) apply_override(root, o, ctx);
  Config cfg;
  ctx.locations = &cfg.locations;
  YamlReader reader(root, "", ctx);
  cfg.visit(reader);
  reader.reject_unknown();
  return cfg;
}

}  // namespace

std::string expand_env(const std::string& text) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      const auto close = text.find('}', i + 2);
      if (close == std::string::npos) throw ConfigError("unterminated ${ in '" + text + "'");
      std::string name = text.substr(i + 2, close - i - 2);
      std::string fallback;
      bool has_fallback = false;
      const auto sep = name.find(":-");
      if (sep != std::string::npos) {
        fallback = name.substr(sep + 2);
        name = name.substr(0, sep);
        has_fallback = true;
      }
      const char* env = std::getenv(name.c_str());
      if (env != nullptr && *env != '\0') {
        out += env;
      } else if (has_fallback) {
        out += fallback;
      } else if (name == "ULMFIT_DATA") {
        out += (fs::current_path() / "data" / "datasets").string();
      } else {
        throw ConfigError("environment variable " + name + " is not set (used in '" + text + "')");
      }
      i = close + 1;
    } else {
      out += text[i++];
    }
  }
  return out;
}

Config load_config_text(const std::string& yaml, const std::string& source,
                        const std::string& base_dir, const std::vector<std::string>& overrides) {
  LoadContext ctx;
  ctx.source = source;
  ctx.base_dir = base_dir;
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(source + ":" + std::to_string(e.mark.line + 1) + ":" +
                      std::to_string(e.mark.column + 1) + ": YAML syntax error: " + e.msg);
  }
  try {
    return load_from_node(root, ctx, overrides);
  } catch (const YAML::Exception& e) {
    // Any yaml-cpp failure the checks above did not foresee is still a bad
    // config, never a crash or a runtime failure.
    throw ConfigError(source + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                      ": " + e.msg);
  }
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw ConfigError(path + ": config file not found");
  std::string text;
  try {
    text = util::read_file(path);
  } catch (const DataError& e) {
    throw ConfigError(e.what());
  }
  const std::string base = fs::absolute(path).parent_path().string();
  return load_config_text(text, path, base, overrides);
}

Config default_config(const std::vector<std::string>& overrides) {
  return load_config_text("{}", "<defaults>", fs::current_path().string(), overrides);
}

std::string dump_config(const Config& cfg) {
  std::ostringstream out;
  YamlWriter writer(out, 0);
  const_cast<Config&>(cfg).visit(writer);
  return out.str();
}

std::string describe_keys(const Config& cfg) {
  std::ostringstream out;
  KeyLister lister(out, "");
  const_cast<Config&>(cfg).visit(lister);
  return out.str();
}

}  // namespace ulmfit::config

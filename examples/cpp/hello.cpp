// SPDX-License-Identifier: MIT
/*
 * A lutf app in C++: extern "C" entry points around C++ bodies. Every entry
 * point runs its body inside guard(), which catches any exception and
 * answers FUNCTION_ERROR with its what(): an exception must never unwind
 * into the C runtime (std::terminate would abort the whole worker).
 */
#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <lutf/function.h>

LUTF_APP_ABI;

namespace
{

struct State {
	std::atomic<unsigned long> calls{0};
};

// Runs body(call); an exception becomes a function error with its what().
template <typename F> int guard(lutf_call *call, F body) noexcept
{
	try {
		return body(call);
	} catch (const std::exception &e) {
		std::string msg = std::string("c++ exception: ") + e.what();
		lutf_fail(call, msg.c_str());
	} catch (...) {
		lutf_fail(call, "c++ exception of unknown type");
	}
	return 1;
}

bool write(lutf_call *call, std::string_view s)
{
	return lutf_write(call, s.data(), s.size()) == 0;
}

std::vector<std::string> words(std::string_view in)
{
	std::vector<std::string> out;
	size_t i = 0;

	while (i < in.size()) {
		size_t j = in.find_first_of(" \t\r\n", i);
		if (j == std::string_view::npos)
			j = in.size();
		if (j > i)
			out.emplace_back(in.substr(i, j - i));
		i = j + 1;
	}
	return out;
}

} // namespace

extern "C" {

__attribute__((visibility("default"))) int lutf_app_init(void **app_state)
{
	State *s = new (std::nothrow) State;

	if (!s)
		return -12; // -ENOMEM
	*app_state = s;
	return 0;
}

__attribute__((visibility("default"))) void lutf_app_fini(void *app_state)
{
	delete static_cast<State *>(app_state);
}

// cpp_hello: "<greeting> <input>", the input's words sorted, and how often
// each occurs (std::map), and the app's call count.
__attribute__((visibility("default"))) int cpp_hello(lutf_call *call)
{
	return guard(call, [](lutf_call *c) {
		auto *s = static_cast<State *>(c->app_state);
		unsigned long n = s ? ++s->calls : 0;
		std::string_view in(static_cast<const char *>(c->input), c->input_len);
		const char *g = lutf_config(c, "greeting");
		std::vector<std::string> w = words(in);
		std::map<std::string, int> count;
		std::string out;

		for (const auto &x : w)
			count[x]++;
		std::sort(w.begin(), w.end());
		out = std::string(g ? g : "hello from C++,") + " " + std::string(in) + "\nsorted:";
		for (const auto &x : w)
			out += " " + x;
		out += "\ncounts:";
		for (const auto &[k, v] : count)
			out += " " + k + "=" + std::to_string(v);
		out += "\ncalls: " + std::to_string(n) + "\n";
		lutf_set_content_type(c, "text/plain");
		if (!write(c, out))
			throw std::length_error("output too large");
		return 0;
	});
}

// cpp_echo: the input back (the least a C++ function does: for measuring).
__attribute__((visibility("default"))) int cpp_echo(lutf_call *call)
{
	return guard(call,
		     [](lutf_call *c) { return lutf_write(c, c->input, c->input_len) ? 1 : 0; });
}

// cpp_throw: throws std::out_of_range (vector::at past the end); the guard
// answers FUNCTION_ERROR with what().
__attribute__((visibility("default"))) int cpp_throw(lutf_call *call)
{
	return guard(call, [](lutf_call *c) {
		std::vector<int> v(c->input_len);

		lutf_log(c, "cpp_throw: reading past the end of %zu", v.size());
		return v.at(v.size() + 1);
	});
}

} // extern "C"

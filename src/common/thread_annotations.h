// Clang's thread-safety attributes (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html) under
// short names. Clang builds check them with -Wthread-safety (CMakeLists.txt); with any other
// compiler they expand to nothing, so the annotations cost gcc builds nothing.
#pragma once

// Abseil (which gRPC's headers include) defines some of the same short names, to the same
// attributes: a file that includes gRPC before this header gets these definitions instead of a
// warning that they are redefined.
#undef CAPABILITY
#undef SCOPED_CAPABILITY
#undef GUARDED_BY
#undef PT_GUARDED_BY
#undef REQUIRES
#undef REQUIRES_SHARED
#undef EXCLUDES
#undef ACQUIRE
#undef RELEASE
#undef TRY_ACQUIRE
#undef ASSERT_CAPABILITY
#undef RETURN_CAPABILITY
#undef NO_THREAD_SAFETY_ANALYSIS

#if defined(__clang__)
#define WASMLET_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define WASMLET_THREAD_ANNOTATION(x)
#endif

// A class whose objects are locks (Mutex).
#define CAPABILITY(name) WASMLET_THREAD_ANNOTATION(capability(name))
// A class whose objects hold a lock for their lifetime (MutexLock).
#define SCOPED_CAPABILITY WASMLET_THREAD_ANNOTATION(scoped_lockable)
// A member read or written only with the lock held.
#define GUARDED_BY(x) WASMLET_THREAD_ANNOTATION(guarded_by(x))
// A pointer member whose pointee is read or written only with the lock held.
#define PT_GUARDED_BY(x) WASMLET_THREAD_ANNOTATION(pt_guarded_by(x))
// A function called only with the lock(s) held.
#define REQUIRES(...) WASMLET_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
// A function called only with the lock(s) held at least shared.
#define REQUIRES_SHARED(...) WASMLET_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
// A function called only without the lock(s): it takes them itself.
#define EXCLUDES(...) WASMLET_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
// A function that takes the lock(s) (this object's, without arguments) and returns holding them.
#define ACQUIRE(...) WASMLET_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
// A function that releases the lock(s) (this object's, without arguments).
#define RELEASE(...) WASMLET_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
// A function that takes the lock(s) only when it returns the given value.
#define TRY_ACQUIRE(...) WASMLET_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
// A function that checks at run time that the lock is held; the analysis trusts it after the call.
#define ASSERT_CAPABILITY(x) WASMLET_THREAD_ANNOTATION(assert_capability(x))
// A function that returns a reference to the lock (an accessor).
#define RETURN_CAPABILITY(x) WASMLET_THREAD_ANNOTATION(lock_returned(x))
// A function the analysis does not check: use with a one-line reason, where it cannot follow.
#define NO_THREAD_SAFETY_ANALYSIS WASMLET_THREAD_ANNOTATION(no_thread_safety_analysis)

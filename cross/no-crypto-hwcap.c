/* A CPU without the ARMv8 crypto extensions, for the aarch64 tests under
 * qemu-user (every CPU model qemu offers has them; a Raspberry Pi 4's
 * BCM2711 and a Pi 3's BCM2837 do not). Preloaded into the test binary, it
 * hides AES, PMULL, SHA1 and SHA2 from getauxval(AT_HWCAP), which is where
 * the run-time detection of the `aes` and `sha1` crates and of Rust's
 * std_detect looks. `just test-aarch64` builds and uses it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/auxv.h>

unsigned long getauxval(unsigned long type) {
    static unsigned long (*real)(unsigned long);
    if (!real)
        real = (unsigned long (*)(unsigned long))dlsym(RTLD_NEXT, "getauxval");
    unsigned long v = real(type);
    if (type == AT_HWCAP)
        v &= ~(HWCAP_AES | HWCAP_PMULL | HWCAP_SHA1 | HWCAP_SHA2);
    return v;
}

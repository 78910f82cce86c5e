// SPDX-License-Identifier: GPL-2.0
/*
 * lnst_warn: the VM lab's kernel WARNING on demand. Loading it does
 * nothing; writing 1 (or y) to /sys/module/lnst_warn/parameters/trigger
 * makes the kernel WARN with "lnst_warn: triggered on purpose", so a
 * test can check that a splat during a recipe fails it.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/bug.h>

static int lnst_warn_set(const char *val, const struct kernel_param *kp)
{
	bool on;
	int err = kstrtobool(val, &on);

	if (err)
		return err;
	WARN(on, "lnst_warn: triggered on purpose\n");
	return 0;
}

static const struct kernel_param_ops lnst_warn_ops = {
	.set = lnst_warn_set,
};
module_param_cb(trigger, &lnst_warn_ops, NULL, 0200);
MODULE_PARM_DESC(trigger, "write 1 to make the kernel WARN");

MODULE_DESCRIPTION("lnst-go VM lab: a kernel WARNING on demand");
MODULE_LICENSE("GPL");

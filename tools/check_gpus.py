"""Exit 2 with one clear line if the machine has fewer GPUs than asked for.

Used by dist_train.sh / dist_test.sh before torchrun starts processes. On a
machine without CUDA the processes run on CPU (gloo), so any count is fine.
"""
import sys

import torch


def main():
    try:
        wanted = int(sys.argv[1])
        assert wanted >= 1
    except (IndexError, ValueError, AssertionError):
        print('error: GPUS must be a positive integer', file=sys.stderr)
        sys.exit(2)
    if torch.cuda.is_available():
        have = torch.cuda.device_count()
        if wanted > have:
            print(f'error: asked for {wanted} GPUs but this machine has '
                  f'{have}; pass {have} or fewer', file=sys.stderr)
            sys.exit(2)


if __name__ == '__main__':
    main()

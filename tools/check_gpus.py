"""Exit 2 with one clear line if the machine has fewer GPUs than asked for
(used by dist_train.sh / dist_test.sh before torchrun starts)."""
import sys

from citymask.cli import exit_on_error
from citymask.preflight import check_gpu_count


@exit_on_error
def main():
    check_gpu_count(sys.argv[1] if len(sys.argv) > 1 else '')


if __name__ == '__main__':
    main()

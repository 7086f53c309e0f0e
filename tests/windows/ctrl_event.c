/* Sends a console control event to a program, as a console's Ctrl+C or
 * Ctrl+Break would (the tests run it under wine; there is no kill(2)):
 *
 *   ctrl_event.exe ctrl-c|ctrl-break PROGRAM [ARG...]
 *
 * starts PROGRAM in this console with this program's stdout and stderr,
 * sends the event when a line arrives on stdin (so the caller chooses the
 * moment, e.g. once PROGRAM said it is ready), waits for PROGRAM and exits
 * with its exit status.
 *
 * Ctrl+C can only be sent to every process of the console (group 0): this
 * program ignores it itself, and PROGRAM stays in its process group, where
 * Ctrl+C is enabled.  Ctrl+Break goes to PROGRAM's own process group. */
#include <windows.h>
#include <stdio.h>
#include <string.h>

/* Appends ARG to CMD quoted as CommandLineToArgvW and the C runtime parse it. */
static void append_arg(char *cmd, size_t size, const char *arg) {
    size_t n = strlen(cmd);
    if (n && n < size - 1) cmd[n++] = ' ';
    if (n < size - 1) cmd[n++] = '"';
    for (const char *p = arg;; p++) {
        size_t slashes = 0;
        while (*p == '\\') { slashes++; p++; }
        /* Backslashes are doubled before a quote, and before the closing one. */
        size_t copies = (*p == '"' || *p == '\0') ? slashes * 2 : slashes;
        for (size_t i = 0; i < copies && n < size - 1; i++) cmd[n++] = '\\';
        if (*p == '\0') break;
        if (*p == '"' && n < size - 1) cmd[n++] = '\\';
        if (n < size - 1) cmd[n++] = *p;
    }
    if (n < size - 1) cmd[n++] = '"';
    cmd[n] = '\0';
}

int main(int argc, char **argv) {
    static char cmd[32768];
    DWORD event, flags = 0, status;
    STARTUPINFOA si = { .cb = sizeof si };
    PROCESS_INFORMATION pi;
    SECURITY_ATTRIBUTES inherit = { .nLength = sizeof inherit, .bInheritHandle = TRUE };
    char line[64];

    if (argc < 3 || (strcmp(argv[1], "ctrl-c") && strcmp(argv[1], "ctrl-break"))) {
        fprintf(stderr, "usage: ctrl_event ctrl-c|ctrl-break PROGRAM [ARG...]\n");
        return 2;
    }
    if (!strcmp(argv[1], "ctrl-c")) {
        event = CTRL_C_EVENT;
        /* PROGRAM inherits this setting: Ctrl+C enabled, however this
         * program was started. */
        SetConsoleCtrlHandler(NULL, FALSE);
    } else {
        event = CTRL_BREAK_EVENT;
        flags = CREATE_NEW_PROCESS_GROUP;
    }
    for (int i = 2; i < argc; i++)
        append_arg(cmd, sizeof cmd, argv[i]);

    /* PROGRAM reads nothing: stdin is this program's channel. */
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = CreateFileA("NUL", GENERIC_READ, 0, &inherit, OPEN_EXISTING, 0, NULL);
    si.hStdOutput = GetStdHandle(STD_OUTPUT_HANDLE);
    si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    /* Control events go to the processes of a console.  Under wine, the
     * console of a program started from a Unix shell takes none
     * (GenerateConsoleCtrlEvent fails: error 12, or 6 on a terminal); a
     * console of our own does, and PROGRAM shares it.  AllocConsole takes
     * over the standard handles: PROGRAM gets the ones saved above, and the
     * C runtime's stdin stays on the caller's pipe. */
    FreeConsole();
    if (!AllocConsole()) {
        fprintf(stderr, "ctrl_event: AllocConsole: error %lu\n", GetLastError());
        return 125;
    }
    SetHandleInformation(si.hStdOutput, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
    SetHandleInformation(si.hStdError, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
    if (!CreateProcessA(NULL, cmd, NULL, NULL, TRUE, flags, NULL, NULL, &si, &pi)) {
        fprintf(stderr, "ctrl_event: cannot start %s: error %lu\n", argv[2], GetLastError());
        return 127;
    }
    /* Ctrl+C goes to this program too: ignored here. */
    if (event == CTRL_C_EVENT)
        SetConsoleCtrlHandler(NULL, TRUE);
    if (fgets(line, sizeof line, stdin)) {
        if (!GenerateConsoleCtrlEvent(event, event == CTRL_C_EVENT ? 0 : pi.dwProcessId)) {
            fprintf(stderr, "ctrl_event: GenerateConsoleCtrlEvent: error %lu\n", GetLastError());
            TerminateProcess(pi.hProcess, 126);
        }
    }
    WaitForSingleObject(pi.hProcess, INFINITE);
    GetExitCodeProcess(pi.hProcess, &status);
    return (int)status;
}

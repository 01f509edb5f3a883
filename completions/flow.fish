# fish completion for flow (shellflow), generated from click by
# 'flow completion show fish'. Candidates come from 'flow' itself, names from the
# configured database. Install: flow completion install fish
function _flow_completion;
    set -l response (env _FLOW_COMPLETE=fish_complete COMP_WORDS=(commandline -cp) COMP_CWORD=(commandline -t) flow 2>/dev/null);

    for completion in $response;
        set -l metadata (string split -m 1 "," $completion);

        if test $metadata[1] = "dir";
            __fish_complete_directories $metadata[2];
        else if test $metadata[1] = "file";
            __fish_complete_path $metadata[2];
        else if test $metadata[1] = "plain";
            echo $metadata[2];
        end;
    end;
end;

complete --no-files --command flow --arguments "(_flow_completion)";
